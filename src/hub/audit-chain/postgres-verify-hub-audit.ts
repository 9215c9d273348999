/**
 * `dockfleet audit verify` on a PostgreSQL hub: the same two walks as verify-hub-audit.ts (the
 * chain in seq order, then the chain replayed per audit id merged with audit_log in id order), the
 * same checks and messages, read in pages of PAGE rows (keyset, so memory stays bounded) inside one
 * REPEATABLE READ, READ ONLY transaction: every page sees the same snapshot, whatever other
 * replicas append meanwhile.
 *
 * One check SQLite has is left out: rows cut off the end of both tables. SQLite's AUTOINCREMENT
 * high-water marks roll back with their transaction; PostgreSQL's sequences do not (a failed audit
 * write still uses an id), so comparing them with the chain's end would cry tampering after any
 * failed write.
 */
import type { PgDb, Queryable } from '../../store/postgres/db.ts';
import { GENESIS, applyEntry, type ChainKind, type ChainedRow } from './chain-entry.ts';
import { BegunIds, checkChainEntry, checkRow, parseRecord, rowDeleted, type AuditRowDb, type ChainRowDb, type HubAuditProblem, type HubAuditReport } from './verify-hub-audit.ts';

const PAGE = 1000;

export async function verifyHubAuditPostgres(db: PgDb): Promise<HubAuditReport> {
  return db.tx(async (q) => {
    await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return walk(q);
  });
}

async function walk(q: Queryable): Promise<HubAuditReport> {
  let head = { seq: 0, hash: GENESIS };
  let entries = 0;
  let rows = 0;
  const done = (problem: HubAuditProblem | null): HubAuditReport => ({ ok: problem === null, entries, rows, head, problem });
  const { rows: found } = await q.query<{ present: boolean }>("SELECT to_regclass('audit_chain') IS NOT NULL AS present");
  if (!found[0]?.present) return done({ kind: 'no-chain', seq: null, auditId: null, message: 'this database has no audit chain yet: start the hub on it once (the migration creates and seeds it)' });

  const begun = new BegunIds();
  for await (const raw of chainInOrder(q)) {
    const problem = checkChainEntry(raw, head, begun);
    if (problem) return done(problem);
    head = { seq: raw.seq, hash: raw.hash };
    entries++;
  }

  const problem = await compareRows(q, replayed(q), () => rows++);
  return done(problem);
}

/** Merges the replayed rows with audit_log, both in id order; calls MATCHED for each row that agrees. */
async function compareRows(q: Queryable, chained: AsyncGenerator<{ auditId: number; row: ChainedRow }>, matched: () => void): Promise<HubAuditProblem | null> {
  let next = await chained.next();
  for await (const row of auditInOrder(q)) {
    const problem = checkRow(row, next.done ? undefined : next.value);
    if (problem) return problem;
    matched();
    next = await chained.next();
  }
  return next.done ? null : rowDeleted(next.value);
}

/** The rows the chain says were written, one per audit id in id order (each id's entries folded in seq order). */
async function* replayed(q: Queryable): AsyncGenerator<{ auditId: number; row: ChainedRow }> {
  let auditId: number | null = null;
  let row: ChainedRow | undefined;
  for await (const raw of chainByAuditId(q)) {
    if (raw.audit_id !== auditId) {
      if (auditId !== null && row) yield { auditId, row };
      auditId = raw.audit_id;
      row = undefined;
    }
    row = applyEntry(row, raw.kind as ChainKind, parseRecord(raw.record) ?? {}) ?? row;
  }
  if (auditId !== null && row) yield { auditId, row };
}

async function* chainInOrder(q: Queryable): AsyncGenerator<ChainRowDb> {
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const { rows } = await q.query<ChainRowDb>('SELECT seq, kind, audit_id, record, prev, hash FROM audit_chain WHERE seq > $1 ORDER BY seq LIMIT $2', [after, PAGE]);
    yield* rows;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.seq;
  }
}

async function* chainByAuditId(q: Queryable): AsyncGenerator<Pick<ChainRowDb, 'audit_id' | 'seq' | 'kind' | 'record'>> {
  let after: [number, number] = [Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
  for (;;) {
    const { rows } = await q.query<Pick<ChainRowDb, 'audit_id' | 'seq' | 'kind' | 'record'>>(
      'SELECT audit_id, seq, kind, record FROM audit_chain WHERE (audit_id, seq) > ($1, $2) ORDER BY audit_id, seq LIMIT $3',
      [...after, PAGE],
    );
    yield* rows;
    if (rows.length < PAGE) return;
    const last = rows[rows.length - 1]!;
    after = [last.audit_id, last.seq];
  }
}

async function* auditInOrder(q: Queryable): AsyncGenerator<AuditRowDb> {
  let after = Number.MIN_SAFE_INTEGER;
  for (;;) {
    const { rows } = await q.query<AuditRowDb>('SELECT id, at, "user", node, method, path, status, finished_at, bytes FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2', [after, PAGE]);
    yield* rows;
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}
