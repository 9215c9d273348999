/** Stack calls whose answers the generic helpers would flatten: a refused deploy's per-line
 * Compose problems (400 `error.errors`); and the rollouts a browser with a key signs (deploy,
 * rollback, removal: the hub files their jobs awaiting the signature, this browser signs each). */
import { ApiError, UI_HEADER, del, errorFrom, post } from './api.ts';
import type { SigningProposal } from '../../protocol/stack-api.ts';
import { deploySigner, signRolloutJobs } from './signing.ts';
import type { ComposeIssue, RolloutStarted, StackTargetSpec } from './types.ts';

export interface DeployInput {
  compose: string;
  env?: Record<string, string>;
  secretEnv?: Record<string, string>;
  target: StackTargetSpec | { selector: string };
  parallel?: number;
  gate?: { stableMs?: number; deadlineMs?: number };
  idempotencyKey?: string;
  /** Hold the jobs for this browser's signature (issue 13): set by deployStack itself. */
  sign?: boolean;
}

/** Refused before anything was queued, with each problem's place and line. */
export class ComposeRefusedError extends ApiError {
  constructor(
    message: string,
    readonly issues: ComposeIssue[],
  ) {
    super(400, 'validation_failed', message);
  }
}

export async function deployStack(name: string, input: DeployInput): Promise<RolloutStarted> {
  const signer = await deploySigner();
  const body: DeployInput = signer ? { ...input, sign: true } : input;
  let res: Response;
  try {
    res = await fetch(`/api/v1/stacks/${encodeURIComponent(name)}/deploy`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json', [UI_HEADER]: '1' },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'The hub could not be reached. Check your connection.');
  }
  if (res.status === 400) {
    const text = await res.text();
    let parsed: { error?: { code?: string; message?: string; errors?: ComposeIssue[] } } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      /* not JSON: a plain error below */
    }
    const e = parsed.error;
    if (e && Array.isArray(e.errors)) throw new ComposeRefusedError(e.message ?? 'the Compose file was refused', e.errors);
    throw new ApiError(400, e?.code ?? 'http_400', e?.message ?? 'bad request');
  }
  if (!res.ok) throw await errorFrom(res);
  const started = (await res.json()) as RolloutStarted & { signing?: SigningProposal };
  if (signer && started.signing) await signRolloutJobs(signer, name, started.signing);
  return started;
}

/** A rollback to revision `to`; signed like a deploy when this browser signs for the fleet. */
export async function rollbackStack(name: string, to: number): Promise<RolloutStarted> {
  const signer = await deploySigner();
  const started = await post<RolloutStarted & { signing?: SigningProposal }>(`/api/v1/stacks/${encodeURIComponent(name)}/rollback`, signer ? { to, sign: true } : { to });
  if (signer && started.signing) await signRolloutJobs(signer, name, started.signing);
  return started;
}

/** Removes the stack from its nodes; signed like a deploy (a DELETE has no body: `?sign=true`). */
export async function removeStack(name: string): Promise<RolloutStarted> {
  const signer = await deploySigner();
  const started = await del<RolloutStarted & { signing?: SigningProposal }>(`/api/v1/stacks/${encodeURIComponent(name)}${signer ? '?sign=true' : ''}`);
  if (signer && started.signing) await signRolloutJobs(signer, name, started.signing);
  return started;
}

/** The hub's check of a Compose file, storing nothing: every problem with its path and line. */
export async function validateCompose(name: string, body: Pick<DeployInput, 'compose' | 'env' | 'secretEnv'>, signal: AbortSignal): Promise<ComposeIssue[]> {
  return (await post<{ errors: ComposeIssue[] }>(`/api/v1/stacks/${encodeURIComponent(name)}/validate`, body, { signal })).errors;
}

/** `KEY=value` per line (blank lines and `#` comments skipped) → a map; bad lines are named. */
export function parseEnvLines(text: string): { env: Record<string, string>; bad: string[] } {
  const env: Record<string, string> = {};
  const bad: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq > 0 ? line.slice(0, eq).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) bad.push(`line ${i + 1}`);
    else env[key] = line.slice(eq + 1);
  });
  return { env, bad };
}
