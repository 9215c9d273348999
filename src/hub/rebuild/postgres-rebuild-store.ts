/**
 * RebuildStore on the hub's PostgreSQL database (the host-rebuilds migration's tables, with
 * enrollment_codes and node_keys for the takeover): the same records as the SQLite store, and the
 * same all-or-nothing takeover in one transaction. A retry locks the node's rebuild row first, so
 * two replicas retrying one failed rebuild start one new rebuild, not two.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import type { PgDb, Queryable } from '../../store/postgres/db.ts';
import type { CodeRecord, NodeKeyRecord } from '../../store/store.ts';
import { codeValues } from '../../store/rows/store-rows.ts';
import { type EscrowRow, escrowFrom, escrowValues, type RebuildRow, type ReplaceCodeRow, replaceCodeFrom, storedRebuildFrom } from './rebuild-rows.ts';
import type { RebuildRecord } from './rebuild-record.ts';
import type { EscrowRecord, RebuildStore, StoredRebuild } from './rebuild-store.ts';

export class PostgresRebuildStore implements RebuildStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  /** Keeps the first escrowed key of a repository (a key is made once; later results carry none). */
  async putEscrow(e: EscrowRecord): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      `INSERT INTO volume_backup_escrow (node, repository, wrapped_key, created_at, job_id) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (node, repository) DO NOTHING`,
      escrowValues(e),
    );
    return rowCount === 1;
  }

  async escrows(node: string): Promise<EscrowRecord[]> {
    const { rows } = await this.#db.query<EscrowRow>('SELECT * FROM volume_backup_escrow WHERE node = $1 ORDER BY created_at DESC', [node]);
    return rows.map(escrowFrom);
  }

  /** The enrollment code and its replacement mark, in one transaction. */
  async insertReplaceCode(code: CodeRecord, node: string, sealedSecrets: string | null): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query('INSERT INTO enrollment_codes (secret_hash, kind, node_name, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)', codeValues(code));
      await q.query('INSERT INTO node_replacement_codes (secret_hash, node, sealed_secrets, created_at) VALUES ($1, $2, $3, $4)', [code.secretHash, node, sealedSecrets, code.createdAt]);
    });
  }

  async replaceCode(secretHash: string): Promise<{ node: string; sealedSecrets: string | null } | null> {
    const row = (await this.#db.query<ReplaceCodeRow>('SELECT node, sealed_secrets FROM node_replacement_codes WHERE secret_hash = $1', [secretHash])).rows[0];
    return row ? replaceCodeFrom(row) : null;
  }

  /**
   * The takeover, all or nothing: the code is used up, every key of the node is retired, the
   * replacement's key is its only active one, and the rebuild is recorded (replacing an older one).
   */
  async takeOver(secretHash: string, key: NodeKeyRecord, rebuild: StoredRebuild): Promise<void> {
    const at = rebuild.record.startedAt;
    await this.#db.tx(async (q) => {
      const used = (await q.query('UPDATE enrollment_codes SET used_at = $1 WHERE secret_hash = $2 AND used_at IS NULL', [at, secretHash])).rowCount;
      if (used !== 1) throw new DockfleetError('code_used', 'enrollment code was already used');
      await q.query("UPDATE node_keys SET state = 'retired', retired_at = $1 WHERE node_id = $2 AND state = 'active'", [at, key.nodeId]);
      await q.query('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES ($1, $2, $3, $4, $5)', [key.keyId, key.nodeId, key.publicKey, key.state, key.createdAt]);
      await put(q, rebuild);
    });
  }

  /** Stores a rebuild's progress (its secrets stay as they were). */
  async saveRebuild(record: RebuildRecord): Promise<void> {
    await this.#db.query('UPDATE node_rebuilds SET state = $1, record = $2, updated_at = $3 WHERE id = $4', [record.state, JSON.stringify(record), Date.now(), record.id]);
  }

  async retryRebuild(previousId: string, next: StoredRebuild): Promise<boolean> {
    return this.#db.tx(async (q) => {
      const row = (await q.query<{ id: string; state: string }>('SELECT id, state FROM node_rebuilds WHERE node = $1 FOR UPDATE', [next.record.node])).rows[0];
      if (row?.id !== previousId || row.state !== 'failed') return false;
      await put(q, next);
      return true;
    });
  }

  async rebuilds(): Promise<StoredRebuild[]> {
    const { rows } = await this.#db.query<RebuildRow>('SELECT record, sealed_secrets FROM node_rebuilds ORDER BY node COLLATE "C"');
    return rows.map(storedRebuildFrom);
  }
}

async function put(q: Queryable, r: StoredRebuild): Promise<void> {
  await q.query(
    `INSERT INTO node_rebuilds (node, id, state, record, sealed_secrets, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (node) DO UPDATE SET id = excluded.id, state = excluded.state, record = excluded.record,
      sealed_secrets = excluded.sealed_secrets, updated_at = excluded.updated_at`,
    [r.record.node, r.record.id, r.record.state, JSON.stringify(r.record), r.sealedSecrets, Date.now()],
  );
}
