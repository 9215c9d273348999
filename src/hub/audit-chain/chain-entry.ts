/**
 * One entry of the hub's audit chain (issue 13): what it holds and how its hash is made, shared by
 * the writer (sqlite-audit-chain.ts) and the verifier (verify-hub-audit.ts) so both hash the same
 * bytes.
 *
 * Each write to `audit_log` appends one entry: `intent` (a call about to go on: the row as begun),
 * `outcome` (how it ended: status, finish time, bytes) or `record` (a call written in one step, or a
 * row that existed before the chain did). `hash` is SHA-256 (hex) over the canonical JSON of
 * `{seq, kind, auditId, record, prev}`; `prev` is the hash of the entry before (GENESIS first).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../protocol/intent.ts';
import type { AuditRow } from '../../store/store.ts';

export const GENESIS = '0'.repeat(64);

export type ChainKind = 'intent' | 'outcome' | 'record';

/** The audit_log columns as the chain records them (at and finishedAt in ms since the epoch). */
export type ChainedRow = Omit<AuditRow, 'id'>;

export type IntentRecord = Pick<ChainedRow, 'at' | 'user' | 'node' | 'method' | 'path'>;
export type OutcomeRecord = Pick<ChainedRow, 'status' | 'finishedAt' | 'bytes'>;
/** A whole row; `migrated` marks one chained when the chain was created, not when it was written. */
export type WholeRecord = ChainedRow & { migrated?: true };

export interface ChainEntry {
  seq: number;
  kind: ChainKind;
  auditId: number;
  /** Canonical JSON of the record, exactly as stored. */
  record: string;
  prev: string;
  hash: string;
}

export function chainHash(entry: Omit<ChainEntry, 'hash'>): string {
  const { seq, kind, auditId, record, prev } = entry;
  return createHash('sha256').update(canonicalJson({ seq, kind, auditId, record, prev })).digest('hex');
}

export function recordText(record: IntentRecord | OutcomeRecord | WholeRecord): string {
  return canonicalJson(record);
}

/** The audit_log row that replaying entries up to here says must exist (null: the entry does not fit). */
export function applyEntry(current: ChainedRow | undefined, kind: ChainKind, record: Record<string, unknown>): ChainedRow | null {
  const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
  if (kind === 'outcome') {
    if (!current) return null;
    return { ...current, status: num(record.status), finishedAt: num(record.finishedAt), bytes: num(record.bytes) };
  }
  if (current) return null;
  const row: ChainedRow = {
    at: num(record.at) ?? NaN,
    user: String(record.user),
    node: typeof record.node === 'string' ? record.node : null,
    method: String(record.method),
    path: String(record.path),
    status: null,
    finishedAt: null,
    bytes: null,
  };
  if (kind === 'record') Object.assign(row, { status: num(record.status), finishedAt: num(record.finishedAt), bytes: num(record.bytes) });
  return row;
}
