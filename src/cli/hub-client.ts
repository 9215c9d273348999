/**
 * How client commands reach the hub: `--hub URL --token TOKEN` (trusting `--ca FILE` when the
 * hub's certificate is private), else DOCKFLEET_HUB / DOCKFLEET_TOKEN / DOCKFLEET_CA, else
 * the hub's own data directory (`--data DIR`, default ./data) on the hub's machine.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockfleetError, isErrorCode } from '../protocol/errors.ts';
import { parseJsonLine } from '../lib/ndjson.ts';

export interface HubTarget {
  url: URL;
  token: string;
  ca: string | undefined;
}

export interface TargetFlags {
  hub?: string | undefined;
  token?: string | undefined;
  ca?: string | undefined;
  data?: string | undefined;
}

export const TARGET_OPTIONS = {
  hub: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  data: { type: 'string' },
} as const;

export const TARGET_HELP = `Finding the hub: --hub URL --token TOKEN [--ca FILE], or DOCKFLEET_HUB/DOCKFLEET_TOKEN/DOCKFLEET_CA,
or on the hub's machine --data DIR (default ./data: reads hub.json, admin.token and the CA).`;

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new DockfleetError('bad_request', `cannot read ${what} at ${path}`);
  }
}

export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv = process.env): HubTarget {
  const hub = flags.hub ?? env.DOCKFLEET_HUB;
  const token = flags.token ?? env.DOCKFLEET_TOKEN;
  const caFile = flags.ca ?? env.DOCKFLEET_CA;
  if (hub !== undefined || token !== undefined) {
    if (hub === undefined || token === undefined) throw new DockfleetError('bad_request', 'give both the hub URL and a token (--hub and --token)');
    return { url: new URL(hub), token: token.trim(), ca: caFile === undefined ? undefined : readText(caFile, 'the CA file') };
  }
  const dir = flags.data ?? './data';
  const info = parseJsonLine(readText(join(dir, 'hub.json'), "the hub's address (is the hub set up here? try --hub/--token)"));
  const url = info.ok ? (info.value as { url?: unknown }).url : undefined;
  if (typeof url !== 'string') throw new DockfleetError('bad_request', `${join(dir, 'hub.json')} is malformed`);
  return { url: new URL(url), token: readText(join(dir, 'admin.token'), 'the admin token').trim(), ca: readText(join(dir, 'pki', 'ca.pem'), "the hub's CA") };
}

/** Calls the REST API; returns the parsed JSON or throws the hub's error (code and message). */
export function callHub(target: HubTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, target.url),
      {
        method,
        ca: target.ca,
        headers: {
          authorization: `Bearer ${target.token}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const parsed = parseJsonLine(text);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(parsed.ok ? parsed.value : text);
          const err = parsed.ok ? (parsed.value as { error?: { code?: unknown; message?: unknown } }).error : undefined;
          reject(new DockfleetError(isErrorCode(err?.code) ? err.code : 'internal', typeof err?.message === 'string' ? err.message : `hub answered ${status}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new DockfleetError('hub_unreachable', `cannot reach the hub at ${target.url.host}: ${err.message}`)));
    req.end(payload);
  });
}
