/**
 * The hub's audit chain in PostgreSQL (table audit_chain, as the audit-chain migration makes it).
 * Like the SQLite chain, `append` runs inside the transaction that writes the audit_log row, so a
 * row and its entry commit together or not at all. Unlike SQLite, several hub replicas may write
 * at once: each append first takes a transaction-scoped advisory lock, so appends are serialized
 * across every replica and connection, and the head each one reads is the one it extends (a
 * `FOR UPDATE` on the head row would not do: a second appender waiting on it re-reads the same,
 * now stale, head and forks the chain; and an empty chain has no row to lock).
 */
import type { PgDb, Queryable } from '../../store/postgres/db.ts';
import type { AuditChainStore } from './sqlite-audit-chain.ts';
import { GENESIS, chainHash, recordText, type ChainKind, type IntentRecord, type OutcomeRecord, type WholeRecord } from './chain-entry.ts';
import { verifyHubAuditPostgres } from './postgres-verify-hub-audit.ts';
import type { HubAuditReport } from './verify-hub-audit.ts';

/** The advisory lock key that serializes appends ('dockaudt' in ASCII): one chain per database. */
export const AUDIT_CHAIN_LOCK = '7237970109966541940';

export class PostgresAuditChain implements AuditChainStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  /**
   * Appends one entry. TX must be the transaction that writes the audit row (`PgDb.tx`'s
   * Queryable): the lock it takes is held until that transaction ends.
   */
  async append(tx: Queryable, kind: ChainKind, auditId: number, record: IntentRecord | OutcomeRecord | WholeRecord): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [AUDIT_CHAIN_LOCK]);
    const { rows } = await tx.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1');
    const last = rows[0];
    const entry = { seq: (last?.seq ?? 0) + 1, kind, auditId, record: recordText(record), prev: last?.hash ?? GENESIS };
    await tx.query('INSERT INTO audit_chain (seq, kind, audit_id, record, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)', [
      entry.seq,
      entry.kind,
      entry.auditId,
      entry.record,
      entry.prev,
      chainHash(entry),
    ]);
  }

  /** Chains every audit row written before the chain existed, in id order, as it is now. */
  async seedExisting(): Promise<number> {
    return this.#db.tx(async (tx) => {
      const { rows } = await tx.query<WholeRecord & { id: number }>('SELECT id, at, "user", node, method, path, status, finished_at AS "finishedAt", bytes FROM audit_log ORDER BY id');
      for (const { id, ...row } of rows) await this.append(tx, 'record', id, { ...row, migrated: true });
      return rows.length;
    });
  }

  async verify(): Promise<HubAuditReport> {
    return verifyHubAuditPostgres(this.#db);
  }
}
