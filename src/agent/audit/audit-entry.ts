/**
 * One entry of the host's own audit log (issue 13): what it holds and how a line of `audit.log` is
 * read back for showing. Shared by the writer (host-audit.ts, entry-line.ts) and the verifier
 * (verify-audit.ts, scan-entry-line.ts). No imports beyond Node's own: `agent audit --verify` loads
 * this and nothing else of the agent.
 *
 * An entry is `{seq, time, op, target, result, status?, reason?, user?, key?, ref?, tear?, prev, hash}`;
 * `prev` is the hash of the entry before it (GENESIS for the first), so an edit, a removal or a swap
 * breaks the chain. How `hash` is made and how a line is laid out: entry-line.ts.
 */
import { createHash } from 'node:crypto';

export const AUDIT_FILE = 'audit.log';
/** The `prev` of the first entry. */
export const GENESIS = '0'.repeat(64);
/** The operation a tear marker records (a line cut off by a crash, kept as it was written). */
export const TEAR_OP = 'audit torn-write';
/** How a line ends: `,"hash":"` + 64 hex + `"}` after the canonical JSON's last member (entry-line.ts). */
export const HASH_MEMBER_PREFIX = ',"hash":"';
export const HASH_SUFFIX_BYTES = HASH_MEMBER_PREFIX.length + 64 + 2;
/** Longest text kept in any one field: a huge query string cannot bloat the log. */
export const MAX_FIELD = 2048;

export type AuditResult = 'ok' | 'failed' | 'refused';

/** What a caller hands to `HostAuditLog.append`. */
export interface AuditInput {
  op: string;
  target: string;
  result: AuditResult;
  status?: number;
  reason?: string;
  user?: string;
  key?: string;
  ref?: string;
}

/** Where a torn line sits, as its marker records it. */
export interface TearRecord {
  line: number;
  bytes: number;
  sha256: string;
}

/** One entry as written: what the caller gave, with its place in the chain (canonical JSON
 * orders the members, `hash` last). */
export interface AuditEntry extends AuditInput {
  seq: number;
  time: string;
  tear?: TearRecord;
  prev: string;
  hash: string;
}

/** Parses one line (without its newline); null when it is not an entry at all. */
export function parseEntryLine(line: string): AuditEntry | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  return isEntry(raw) ? raw : null;
}

const KNOWN = new Set(['seq', 'time', 'op', 'target', 'result', 'status', 'reason', 'user', 'key', 'ref', 'tear', 'prev', 'hash']);
const HEX64 = /^[0-9a-f]{64}$/;
const isText = (v: unknown): boolean => typeof v === 'string' && v.length <= MAX_FIELD;
const isOptText = (v: unknown): boolean => v === undefined || isText(v);
const isCount = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** An entry's shape, checked by hand (showing the log runs this once a line). */
function isEntry(raw: unknown): raw is AuditEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const e = raw as Record<string, unknown>;
  for (const key in e) if (!KNOWN.has(key)) return false;
  if (!isCount(e.seq, 1) || typeof e.time !== 'string' || !isText(e.op) || !isText(e.target)) return false;
  if (e.result !== 'ok' && e.result !== 'failed' && e.result !== 'refused') return false;
  if (e.status !== undefined && !isCount(e.status, Number.MIN_SAFE_INTEGER)) return false;
  if (!isOptText(e.reason) || !isOptText(e.user) || !isOptText(e.key) || !isOptText(e.ref)) return false;
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev) || typeof e.hash !== 'string' || !HEX64.test(e.hash)) return false;
  return e.tear === undefined || isTear(e.tear);
}

function isTear(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const t = raw as Record<string, unknown>;
  return Object.keys(t).length === 3 && isCount(t.line, 1) && isCount(t.bytes, 0) && typeof t.sha256 === 'string' && HEX64.test(t.sha256);
}

/** Cuts a field to MAX_FIELD characters (marking the cut) so every entry stays small. */
export function clip(value: string): string {
  return value.length <= MAX_FIELD ? value : `${value.slice(0, MAX_FIELD - 1)}…`;
}

/** The SHA-256 (hex) of raw bytes, for a tear marker's record of the torn line. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
