/**
 * restic's requests to the hub's repositories, carried against the channel's grain. The agent is
 * the channel's HTTP/2 server, so it cannot open a stream to the hub; instead the hub keeps one
 * stream parked on each link at RESTIC_REVERSE_PATH, which the agent leaves unanswered until a
 * restic process on its host wants the hub. Then the agent answers it 200, naming the repository
 * in RESTIC_REPO_HEADER, and from there the stream carries restic's own HTTP/2 connection as raw
 * bytes both ways: restic's requests in the agent's answer body, the hub's repository server's
 * answers in the hub's request body. The hub then parks another.
 *
 * Between `dockfleet agent restic-bridge` and the agent (the state dir's restic.sock) the first
 * line each way is JSON — the bridge's `{ repo }`, the agent's `{ ok, message? }` — then raw bytes.
 */
export const RESTIC_REVERSE_PATH = '/_dockfleet/v1/restic/reverse';
export const RESTIC_REPO_HEADER = 'x-dockfleet-restic-repo';

/** A repository name: what a Docker volume may be called, bounded; always one path segment. */
const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function isRepoName(name: string): boolean {
  return REPO_NAME.test(name);
}

/** The longest hello or answer line on the bridge's socket. */
export const BRIDGE_LINE_MAX = 4096;

export interface BridgeHello {
  repo: string;
}

export type BridgeAnswer = { ok: true } | { ok: false; message: string };

export function parseBridgeHello(line: string): BridgeHello | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const repo = (value as { repo?: unknown }).repo;
  return typeof repo === 'string' && isRepoName(repo) ? { repo } : null;
}

export function parseBridgeAnswer(line: string): BridgeAnswer | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { ok, message } = value as { ok?: unknown; message?: unknown };
  if (ok === true) return { ok: true };
  if (ok === false) return { ok: false, message: typeof message === 'string' ? message.slice(0, 500) : 'refused' };
  return null;
}
