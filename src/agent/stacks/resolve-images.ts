/**
 * Each service's image as an image ID on this host, before anything changes: present, or
 * pulled (the policy judges the pull as it judges the gateway's), or the apply stops with the
 * image named. A snapshot's pinned IDs are used as they are.
 */
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { StackProject } from '../../protocol/stacks.ts';
import type { StackEngine } from './stack-engine.ts';
import { refusal, type StackPolicy } from './stack-policy.ts';

const PULL_TIMEOUT_MS = 10 * 60_000;

export type ImageResolution = { ok: true; ids: Map<string, string> } | { ok: false; error: string };

function splitReference(ref: string): { from: string; tag: string } {
  const at = ref.indexOf('@');
  if (at !== -1) return { from: ref.slice(0, at), tag: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? { from: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { from: ref, tag: 'latest' };
}

/** The pull's own error: a non-2xx answer, or an `error` line in its progress stream. */
function pullError(status: number, message: string, text: string): string | null {
  if (status < 200 || status >= 300) return message || `engine answered ${status}`;
  for (const line of text.split('\n')) {
    const parsed = line.trim() === '' ? null : parseJsonLine(line);
    const error = parsed?.ok ? (parsed.value as { error?: unknown } | null)?.error : undefined;
    if (typeof error === 'string') return error;
  }
  return null;
}

export async function resolveImages(engine: StackEngine, policy: StackPolicy, project: StackProject, pinned: Readonly<Record<string, string>>, log: (line: string) => void): Promise<ImageResolution> {
  const ids = new Map<string, string>();
  const byRef = new Map<string, string>();
  for (const [service, spec] of Object.entries(project.services)) {
    const ref = pinned[service] ?? spec.image;
    let id = byRef.get(ref);
    if (id === undefined) {
      let info = await engine.inspect('images', ref);
      if (!info) {
        const { from, tag } = splitReference(ref);
        const path = `/images/create?fromImage=${encodeURIComponent(from)}&tag=${encodeURIComponent(tag)}`;
        const refused = await refusal(policy, 'POST', path);
        if (refused) return { ok: false, error: `service ${service}: image ${ref} is not on this host, and pulling it was refused: ${refused}` };
        log(`pulling ${ref}`);
        const answer = await engine.call('POST', path, undefined, PULL_TIMEOUT_MS).catch((err: Error) => ({ status: 0, message: err.message, text: '', json: null }));
        const error = pullError(answer.status, answer.message, answer.text);
        info = error === null ? await engine.inspect('images', ref) : null;
        if (!info) return { ok: false, error: `service ${service}: image ${ref} is not on this host and could not be pulled: ${(error ?? 'not found after the pull').slice(0, 500)}` };
      }
      id = String(info.Id);
      byRef.set(ref, id);
    }
    ids.set(service, id);
  }
  return { ok: true, ids };
}
