/**
 * The hub's SQLite record for host rebuilds (the host-rebuilds migration's tables): escrowed
 * repository keys, the codes that take over an existing node, the takeover itself (code used,
 * old keys retired, new key active, rebuild recorded: one transaction), and each node's latest
 * rebuild.
 */
import type Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';
import type { CodeRecord, NodeKeyRecord } from '../../store/store.ts';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import { codeValues } from '../../store/rows/store-rows.ts';
import { type EscrowRow, escrowFrom, escrowValues, type RebuildRow, type ReplaceCodeRow, replaceCodeFrom, storedRebuildFrom } from './rebuild-rows.ts';
import type { RebuildRecord } from './rebuild-record.ts';

export interface EscrowRecord {
  node: string;
  repository: string;
  wrappedKey: string;
  createdAt: number;
  jobId: string;
}

export interface StoredRebuild {
  record: RebuildRecord;
  sealedSecrets: string | null;
}

export interface RebuildStore {
  putEscrow(e: EscrowRecord): Promise<boolean>;
  escrows(node: string): Promise<EscrowRecord[]>;
  insertReplaceCode(code: CodeRecord, node: string, sealedSecrets: string | null): Promise<void>;
  replaceCode(secretHash: string): Promise<{ node: string; sealedSecrets: string | null } | null>;
  takeOver(secretHash: string, key: NodeKeyRecord, rebuild: StoredRebuild): Promise<void>;
  saveRebuild(record: RebuildRecord): Promise<void>;
  /** A new rebuild in place of the node's failed one `previousId`; false when that is no longer the node's failed rebuild. */
  retryRebuild(previousId: string, next: StoredRebuild): Promise<boolean>;
  rebuilds(): Promise<StoredRebuild[]>;
}

export class SqliteRebuildStore implements RebuildStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  /** Keeps the first escrowed key of a repository (a key is made once; later results carry none). */
  async putEscrow(e: EscrowRecord): Promise<boolean> {
    return (
      this.#sql
        .get(`INSERT INTO volume_backup_escrow (node, repository, wrapped_key, created_at, job_id) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (node, repository) DO NOTHING`)
        .run(...escrowValues(e)).changes === 1
    );
  }

  async escrows(node: string): Promise<EscrowRecord[]> {
    const rows = this.#sql.get('SELECT * FROM volume_backup_escrow WHERE node = ? ORDER BY created_at DESC').all(node) as EscrowRow[];
    return rows.map(escrowFrom);
  }

  /** The enrollment code and its replacement mark, in one transaction. */
  async insertReplaceCode(code: CodeRecord, node: string, sealedSecrets: string | null): Promise<void> {
    this.#db.transaction(() => {
      this.#sql.get('INSERT INTO enrollment_codes (secret_hash, kind, node_name, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)').run(...codeValues(code));
      this.#sql.get('INSERT INTO node_replacement_codes (secret_hash, node, sealed_secrets, created_at) VALUES (?, ?, ?, ?)').run(code.secretHash, node, sealedSecrets, code.createdAt);
    })();
  }

  async replaceCode(secretHash: string): Promise<{ node: string; sealedSecrets: string | null } | null> {
    const row = this.#sql.get('SELECT node, sealed_secrets FROM node_replacement_codes WHERE secret_hash = ?').get(secretHash) as ReplaceCodeRow | undefined;
    return row ? replaceCodeFrom(row) : null;
  }

  /**
   * The takeover, all or nothing: the code is used up, every key of the node is retired, the
   * replacement's key is its only active one, and the rebuild is recorded (replacing an older one).
   */
  async takeOver(secretHash: string, key: NodeKeyRecord, rebuild: StoredRebuild): Promise<void> {
    const at = rebuild.record.startedAt;
    this.#db.transaction(() => {
      const used = this.#sql.get('UPDATE enrollment_codes SET used_at = ? WHERE secret_hash = ? AND used_at IS NULL').run(at, secretHash).changes;
      if (used !== 1) throw new DockfleetError('code_used', 'enrollment code was already used');
      this.#sql.get("UPDATE node_keys SET state = 'retired', retired_at = ? WHERE node_id = ? AND state = 'active'").run(at, key.nodeId);
      this.#sql.get('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES (?, ?, ?, ?, ?)').run(key.keyId, key.nodeId, key.publicKey, key.state, key.createdAt);
      this.#put(rebuild);
    })();
  }

  #put(r: StoredRebuild): void {
    this.#sql
      .get(`INSERT INTO node_rebuilds (node, id, state, record, sealed_secrets, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (node) DO UPDATE SET id = excluded.id, state = excluded.state, record = excluded.record,
        sealed_secrets = excluded.sealed_secrets, updated_at = excluded.updated_at`)
      .run(r.record.node, r.record.id, r.record.state, JSON.stringify(r.record), r.sealedSecrets, Date.now());
  }

  /** Stores a rebuild's progress (its secrets stay as they were). */
  async saveRebuild(record: RebuildRecord): Promise<void> {
    this.#sql.get('UPDATE node_rebuilds SET state = ?, record = ?, updated_at = ? WHERE id = ?').run(record.state, JSON.stringify(record), Date.now(), record.id);
  }

  async retryRebuild(previousId: string, next: StoredRebuild): Promise<boolean> {
    return this.#db.transaction(() => {
      const row = this.#sql.get('SELECT id, state FROM node_rebuilds WHERE node = ?').get(next.record.node) as { id: string; state: string } | undefined;
      if (row?.id !== previousId || row.state !== 'failed') return false;
      this.#put(next);
      return true;
    })();
  }

  async rebuilds(): Promise<StoredRebuild[]> {
    const rows = this.#sql.get('SELECT record, sealed_secrets FROM node_rebuilds ORDER BY node').all() as RebuildRow[];
    return rows.map(storedRebuildFrom);
  }
}
