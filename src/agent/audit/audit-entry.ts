/**
 * One entry of the host's own audit log (issue 13): what it holds, how its hash is made, and how a
 * line of `audit.log` is read back. Shared by the writer (host-audit.ts) and the verifier
 * (verify-audit.ts), so both agree on the bytes that are hashed.
 *
 * An entry is `{seq, time, op, target, result, status?, reason?, user?, key?, ref?, tear?, prev, hash}`;
 * `hash` is SHA-256 (hex) over the canonical JSON of the entry without `hash`, and `prev` is the hash
 * of the entry before it (GENESIS for the first), so an edit, a removal or a swap breaks the chain.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../../protocol/intent.ts';

export const AUDIT_FILE = 'audit.log';
/** The `prev` of the first entry. */
export const GENESIS = '0'.repeat(64);
/** The operation a tear marker records (a line cut off by a crash, kept as it was written). */
export const TEAR_OP = 'audit torn-write';
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

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const text = z.string().max(MAX_FIELD);

export const auditEntry = z.strictObject({
  seq: z.number().int().positive(),
  time: z.string(),
  op: text,
  target: text,
  result: z.enum(['ok', 'failed', 'refused']),
  status: z.number().int().optional(),
  reason: text.optional(),
  user: text.optional(),
  key: text.optional(),
  ref: text.optional(),
  tear: z.strictObject({ line: z.number().int().positive(), bytes: z.number().int().nonnegative(), sha256: hex64 }).optional(),
  prev: hex64,
  hash: hex64,
});
export type AuditEntry = z.infer<typeof auditEntry>;

/** The hash an entry must carry: SHA-256 over its canonical JSON without `hash`. */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = entry;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
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

/** The same rules as `auditEntry`, checked by hand: verify runs this 100,000 times a second or so. */
function isEntry(raw: unknown): raw is AuditEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const e = raw as Record<string, unknown>;
  for (const key in e) if (!KNOWN.has(key)) return false;
  if (!isCount(e.seq, 1) || typeof e.time !== 'string' || !isText(e.op) || !isText(e.target)) return false;
  if (e.result !== 'ok' && e.result !== 'failed' && e.result !== 'refused') return false;
  if (e.status !== undefined && !isCount(e.status, Number.MIN_SAFE_INTEGER)) return false;
  if (!isOptText(e.reason) || !isOptText(e.user) || !isOptText(e.key) || !isOptText(e.ref)) return false;
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev) || typeof e.hash !== 'string' || !HEX64.test(e.hash)) return false;
  if (e.tear !== undefined) return auditEntry.shape.tear.safeParse(e.tear).success;
  return true;
}

/** Cuts a field to MAX_FIELD characters (marking the cut) so every entry stays small. */
export function clip(value: string): string {
  return value.length <= MAX_FIELD ? value : `${value.slice(0, MAX_FIELD - 1)}…`;
}

/** The SHA-256 (hex) of raw bytes, for a tear marker's record of the torn line. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
