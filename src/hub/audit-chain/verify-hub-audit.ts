/**
 * Checks the hub's audit log against its chain (`dockfleet audit verify`, GET /api/v1/audit/verify).
 * Two walks, read-only, in one read transaction, in bounded memory (no row is held past its turn):
 * 1. the chain itself, in seq order: seq follows seq, each `prev` is the hash before it, each hash
 *    matches its entry (an edited, removed or reordered chain entry breaks here), and each entry fits
 *    those before it (an outcome needs its row begun, a row is begun once: one bit per audit id);
 * 2. the chain replayed into the rows it says were written, one audit id at a time (its entries in
 *    seq order, through the audit_id index), merged with `audit_log` in id order: a row whose columns
 *    differ was edited, a row the chain names but the table lacks was deleted, a row the chain never
 *    saw was inserted behind the hub's back.
 * Then the highest ids SQLite ever handed out (sqlite_sequence) must be the chain's last ones, so
 * rows cut off the end of both tables are noticed too. The first problem is reported.
 */
import type Database from 'better-sqlite3';
import { GENESIS, applyEntry, chainHash, type ChainKind, type ChainedRow } from './chain-entry.ts';

export type HubAuditProblemKind = 'chain-edited' | 'chain-gap' | 'chain-prev' | 'chain-unfit' | 'row-edited' | 'row-deleted' | 'row-inserted' | 'tail-missing' | 'no-chain';

export interface HubAuditProblem {
  kind: HubAuditProblemKind;
  /** The chain entry's seq, when the problem is in the chain. */
  seq: number | null;
  /** The audit row's id, when the problem is about a row. */
  auditId: number | null;
  message: string;
}

export interface HubAuditReport {
  ok: boolean;
  /** Chain entries walked, and audit rows compared. */
  entries: number;
  rows: number;
  head: { seq: number; hash: string };
  problem: HubAuditProblem | null;
}

export interface ChainRowDb {
  seq: number;
  kind: string;
  audit_id: number;
  record: string;
  prev: string;
  hash: string;
}
export interface AuditRowDb {
  id: number;
  at: number;
  user: string;
  node: string | null;
  method: string;
  path: string;
  status: number | null;
  finished_at: number | null;
  bytes: number | null;
}

export const COLUMNS: Array<[keyof ChainedRow, keyof AuditRowDb]> = [
  ['at', 'at'],
  ['user', 'user'],
  ['node', 'node'],
  ['method', 'method'],
  ['path', 'path'],
  ['status', 'status'],
  ['finishedAt', 'finished_at'],
  ['bytes', 'bytes'],
];

export function verifyHubAudit(db: Database.Database): HubAuditReport {
  return db.transaction(() => walk(db))();
}

function walk(db: Database.Database): HubAuditReport {
  let head = { seq: 0, hash: GENESIS };
  let entries = 0;
  let rows = 0;
  const done = (problem: HubAuditProblem | null): HubAuditReport => ({ ok: problem === null, entries, rows, head, problem });
  const hasChain = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_chain'").get();
  if (!hasChain) return done({ kind: 'no-chain', seq: null, auditId: null, message: 'this database has no audit chain yet: start the hub on it once (the migration creates and seeds it)' });

  const begun = new BegunIds();
  for (const raw of db.prepare('SELECT seq, kind, audit_id, record, prev, hash FROM audit_chain ORDER BY seq').iterate() as IterableIterator<ChainRowDb>) {
    const problem = checkChainEntry(raw, head, begun);
    if (problem) return done(problem);
    head = { seq: raw.seq, hash: raw.hash };
    entries++;
  }

  // Both sides in id order; the first id where they differ is the first bad row.
  let lastAudit = 0;
  const chained = replayed(db);
  try {
    const problem = compareRows(db, chained, (id) => {
      lastAudit = id;
      rows++;
    });
    if (problem) return done(problem);
  } finally {
    chained.return(undefined); // closes its statement when a problem ends the walk early
  }

  // AUTOINCREMENT's high-water marks: ids handed out beyond the chain's end mean its tail was cut off.
  const marks = new Map((db.prepare("SELECT name, seq FROM sqlite_sequence WHERE name IN ('audit_chain', 'audit_log')").all() as Array<{ name: string; seq: number }>).map((r) => [r.name, r.seq]));
  if ((marks.get('audit_chain') ?? 0) > head.seq) {
    return done({ kind: 'tail-missing', seq: head.seq + 1, auditId: null, message: `chain entries after seq ${head.seq} (up to ${marks.get('audit_chain')}) were removed from its end` });
  }
  if ((marks.get('audit_log') ?? 0) > lastAudit) {
    return done({
      kind: 'tail-missing',
      seq: null,
      auditId: lastAudit + 1,
      message: `audit rows after ${lastAudit} (up to ${marks.get('audit_log')}) were removed from the end of the log and its chain`,
    });
  }
  return done(null);
}

/**
 * One chain entry against the head before it (both engines' walks): its seq follows, its prev is
 * that head's hash, its hash is its own, its record is JSON, and it fits what was begun (an outcome
 * needs its row begun before it; a row is begun once). Records the row as begun when it begins one.
 */
export function checkChainEntry(raw: ChainRowDb, head: { seq: number; hash: string }, begun: BegunIds): HubAuditProblem | null {
  const at = `chain entry seq ${raw.seq} (audit row ${raw.audit_id}, ${raw.kind})`;
  if (raw.seq !== head.seq + 1) return { kind: 'chain-gap', seq: raw.seq, auditId: raw.audit_id, message: `${at}: expected seq ${head.seq + 1}, so a chain entry was removed or renumbered` };
  if (raw.prev !== head.hash) return { kind: 'chain-prev', seq: raw.seq, auditId: raw.audit_id, message: `${at}: prev does not match the hash of seq ${head.seq}: entries were removed or reordered` };
  if (chainHash({ seq: raw.seq, kind: raw.kind as ChainKind, auditId: raw.audit_id, record: raw.record, prev: raw.prev }) !== raw.hash) {
    return { kind: 'chain-edited', seq: raw.seq, auditId: raw.audit_id, message: `${at}: hash mismatch: the chain entry was edited` };
  }
  if (!parseRecord(raw.record)) return { kind: 'chain-edited', seq: raw.seq, auditId: raw.audit_id, message: `${at}: its record is not a JSON object` };
  const fits = raw.kind === 'outcome' ? begun.has(raw.audit_id) : !begun.has(raw.audit_id);
  if (!fits) return unfit(raw, at);
  if (raw.kind !== 'outcome') begun.add(raw.audit_id);
  return null;
}

/** Merges the replayed rows with `audit_log`, both in id order; calls MATCHED for each row that agrees. */
function compareRows(db: Database.Database, chained: Generator<{ auditId: number; row: ChainedRow }>, matched: (id: number) => void): HubAuditProblem | null {
  let next = chained.next();
  for (const row of db.prepare('SELECT id, at, user, node, method, path, status, finished_at, bytes FROM audit_log ORDER BY id').iterate() as IterableIterator<AuditRowDb>) {
    const problem = checkRow(row, next.done ? undefined : next.value);
    if (problem) return problem;
    matched(row.id);
    next = chained.next();
  }
  return next.done ? null : rowDeleted(next.value);
}

/** Chained rows with no audit_log row at their place were deleted. */
export function rowDeleted(chained: { auditId: number; row: ChainedRow }): HubAuditProblem {
  return {
    kind: 'row-deleted',
    seq: null,
    auditId: chained.auditId,
    message: `audit row ${chained.auditId} is in the chain but not in the audit log: it was deleted (${describe(chained.row)})`,
  };
}

/**
 * One audit_log row against the next row the chain replays (both engines' merges, both in id
 * order): a chained row before it was deleted, a row with no chained twin was inserted, a column
 * that differs was edited. Null when they agree.
 */
export function checkRow(row: AuditRowDb, chained: { auditId: number; row: ChainedRow } | undefined): HubAuditProblem | null {
  if (chained && chained.auditId < row.id) return rowDeleted(chained);
  const want = chained?.auditId === row.id ? chained.row : undefined;
  if (!want) return { kind: 'row-inserted', seq: null, auditId: row.id, message: `audit row ${row.id} is not in the chain: it was written behind the hub's back (${describe(fromDb(row))})` };
  for (const [field, column] of COLUMNS) {
    if (want[field] !== row[column]) {
      return {
        kind: 'row-edited',
        seq: null,
        auditId: row.id,
        message: `audit row ${row.id} was edited: ${field} is ${JSON.stringify(row[column])}, the chain recorded ${JSON.stringify(want[field])}`,
      };
    }
  }
  return null;
}

/**
 * The rows the chain says were written, one per audit id in id order: each id's entries folded in
 * seq order (the audit_id index gives them so). Walk 1 has checked that they fit.
 */
function* replayed(db: Database.Database): Generator<{ auditId: number; row: ChainedRow }> {
  let auditId: number | null = null;
  let row: ChainedRow | undefined;
  for (const raw of db.prepare('SELECT audit_id, kind, record FROM audit_chain ORDER BY audit_id, seq').iterate() as IterableIterator<Pick<ChainRowDb, 'audit_id' | 'kind' | 'record'>>) {
    if (raw.audit_id !== auditId) {
      if (auditId !== null && row) yield { auditId, row };
      auditId = raw.audit_id;
      row = undefined;
    }
    row = applyEntry(row, raw.kind as ChainKind, parseRecord(raw.record) ?? {}) ?? row;
  }
  if (auditId !== null && row) yield { auditId, row };
}

/** The audit ids begun so far: a bit each for the ids the hub hands out (1, 2, 3 …), a set for any other. */
export class BegunIds {
  static readonly #BITMAP_IDS = 1 << 27; // 16 MiB of bits at most; past it (a tampered id) the set takes over
  #bits = new Uint8Array(1024);
  readonly #other = new Set<number>();

  has(id: number): boolean {
    if (!BegunIds.#inBitmap(id)) return this.#other.has(id);
    return id >> 3 < this.#bits.length && (this.#bits[id >> 3]! & (1 << (id & 7))) !== 0;
  }

  add(id: number): void {
    if (!BegunIds.#inBitmap(id)) {
      this.#other.add(id);
      return;
    }
    if (id >> 3 >= this.#bits.length) {
      const grown = new Uint8Array(Math.max(this.#bits.length * 2, (id >> 3) + 1));
      grown.set(this.#bits);
      this.#bits = grown;
    }
    this.#bits[id >> 3]! |= 1 << (id & 7);
  }

  static #inBitmap(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < BegunIds.#BITMAP_IDS;
  }
}

export function parseRecord(text: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function unfit(raw: ChainRowDb, at: string): HubAuditProblem {
  return {
    kind: 'chain-unfit',
    seq: raw.seq,
    auditId: raw.audit_id,
    message: `${at}: does not fit the entries before it (${raw.kind === 'outcome' ? 'an outcome of a row never begun' : 'the row was begun already'})`,
  };
}

export function fromDb(row: AuditRowDb): ChainedRow {
  return { at: row.at, user: row.user, node: row.node, method: row.method, path: row.path, status: row.status, finishedAt: row.finished_at, bytes: row.bytes };
}

export function describe(row: ChainedRow): string {
  return `${row.user} ${row.method} ${row.path}${row.node ? ` on ${row.node}` : ''} at ${new Date(row.at).toISOString()}`;
}
