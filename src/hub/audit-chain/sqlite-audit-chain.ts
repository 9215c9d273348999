/**
 * The hub's audit chain in SQLite (table audit_chain). The store calls `append` inside the same
 * transaction as each audit_log write, so a row and its chain entry are committed together or not
 * at all. `seedExisting` chains the rows that were there before the chain (once, right after its
 * migration). `verify` is the read-only check (verify-hub-audit.ts).
 */
import type Database from 'better-sqlite3';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import { GENESIS, chainHash, recordText, type ChainKind, type IntentRecord, type OutcomeRecord, type WholeRecord } from './chain-entry.ts';
import { verifyHubAudit, type HubAuditReport } from './verify-hub-audit.ts';

export const AUDIT_CHAIN_MIGRATION = '20261201T222000-audit-chain.sql';

/** What the hub's REST API asks of the chain. */
export interface AuditChainStore {
  verify(): Promise<HubAuditReport>;
}

export class SqliteAuditChain implements AuditChainStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  /** Appends one entry; call inside the transaction that writes the audit row. */
  append(kind: ChainKind, auditId: number, record: IntentRecord | OutcomeRecord | WholeRecord): void {
    const last = this.#sql.get('SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    const entry = { seq: (last?.seq ?? 0) + 1, kind, auditId, record: recordText(record), prev: last?.hash ?? GENESIS };
    this.#sql.get('INSERT INTO audit_chain (seq, kind, audit_id, record, prev, hash) VALUES (?, ?, ?, ?, ?, ?)').run(entry.seq, entry.kind, entry.auditId, entry.record, entry.prev, chainHash(entry));
  }

  /** Chains every audit row written before the chain existed, in id order, as it is now. */
  seedExisting(): number {
    return this.#db.transaction(() => {
      const rows = this.#db.prepare('SELECT id, at, user, node, method, path, status, finished_at AS finishedAt, bytes FROM audit_log ORDER BY id').all() as Array<WholeRecord & { id: number }>;
      for (const { id, ...row } of rows) this.append('record', id, { ...row, migrated: true });
      return rows.length;
    })();
  }

  async verify(): Promise<HubAuditReport> {
    return verifyHubAudit(this.#db);
  }
}
