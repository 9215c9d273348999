/**
 * VolumeBackupStore on the hub's PostgreSQL database (the volume-backup-policies and
 * volume-backup-repo-keys migrations' tables): the same records as the SQLite store, each
 * read-modify-write in one transaction. Replicas may report the same volume at once, so
 * `recordReport` first takes an advisory lock on that volume: the newer-of merge then reads what
 * the other replica wrote instead of overwriting it.
 */
import type { BackupOutcome, VerifyOutcome } from '../../protocol/volume-backup.ts';
import type { PgDb, Queryable } from '../../store/postgres/db.ts';
import { type PolicyRow, policyFrom, policyValues, type StatusRow, statusFrom } from './volume-backup-rows.ts';
import type { PolicyRecord, StatusRecord, VolumeBackupStore } from './volume-backup-store.ts';

export class PostgresVolumeBackupStore implements VolumeBackupStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async policies(node?: string): Promise<PolicyRecord[]> {
    const { rows } =
      node === undefined
        ? await this.#db.query<PolicyRow>('SELECT node, volume, policy, set_by FROM volume_backup_policies ORDER BY node COLLATE "C", volume COLLATE "C"')
        : await this.#db.query<PolicyRow>('SELECT node, volume, policy, set_by FROM volume_backup_policies WHERE node = $1 ORDER BY volume COLLATE "C"', [node]);
    return rows.map(policyFrom);
  }

  async #bump(q: Queryable, node: string): Promise<number> {
    const { rows } = await q.query<{ revision: number }>(
      `INSERT INTO volume_backup_policy_revisions (node, revision) VALUES ($1, 1)
      ON CONFLICT (node) DO UPDATE SET revision = volume_backup_policy_revisions.revision + 1 RETURNING revision`,
      [node],
    );
    return rows[0]!.revision;
  }

  async putPolicy(r: PolicyRecord): Promise<number> {
    return this.#db.tx(async (q) => {
      await q.query(
        `INSERT INTO volume_backup_policies (node, volume, policy, set_at, set_by) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (node, volume) DO UPDATE SET policy = excluded.policy, set_at = excluded.set_at, set_by = excluded.set_by`,
        policyValues(r),
      );
      return this.#bump(q, r.node);
    });
  }

  async deletePolicy(node: string, volume: string): Promise<number | null> {
    return this.#db.tx(async (q) => {
      const gone = (await q.query('DELETE FROM volume_backup_policies WHERE node = $1 AND volume = $2', [node, volume])).rowCount === 1;
      return gone ? this.#bump(q, node) : null;
    });
  }

  async status(node: string, volume: string): Promise<StatusRecord | null> {
    const row = (await this.#db.query<StatusRow>('SELECT * FROM volume_backup_status WHERE node = $1 AND volume = $2', [node, volume])).rows[0];
    return row ? statusFrom(row) : null;
  }

  async statuses(node: string): Promise<StatusRecord[]> {
    return (await this.#db.query<StatusRow>('SELECT * FROM volume_backup_status WHERE node = $1 ORDER BY volume COLLATE "C"', [node])).rows.map(statusFrom);
  }

  async repoKey(node: string, repository: string): Promise<string | null> {
    const row = (await this.#db.query<{ sealed_password: string }>('SELECT sealed_password FROM volume_backup_repo_keys WHERE node = $1 AND repository = $2', [node, repository])).rows[0];
    return row?.sealed_password ?? null;
  }

  async putRepoKey(node: string, repository: string, sealedPassword: string, createdAt: number): Promise<string> {
    return this.#db.tx(async (q) => {
      await q.query('INSERT INTO volume_backup_repo_keys (node, repository, sealed_password, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (node, repository) DO NOTHING', [
        node,
        repository,
        sealedPassword,
        createdAt,
      ]);
      // A new statement sees a key another replica committed while the insert waited on it.
      const { rows } = await q.query<{ sealed_password: string }>('SELECT sealed_password FROM volume_backup_repo_keys WHERE node = $1 AND repository = $2', [node, repository]);
      return rows[0]!.sealed_password;
    });
  }

  async policySecrets(node: string, volume: string): Promise<{ sealedEnv: string; names: string[] } | null> {
    const row = (await this.#db.query<{ sealed_env: string; names: string }>('SELECT sealed_env, names FROM volume_backup_policy_secrets WHERE node = $1 AND volume = $2', [node, volume])).rows[0];
    return row ? { sealedEnv: row.sealed_env, names: JSON.parse(row.names) as string[] } : null;
  }

  async setPolicySecrets(node: string, volume: string, secrets: { sealedEnv: string; names: string[] } | null): Promise<void> {
    if (secrets === null) {
      await this.#db.query('DELETE FROM volume_backup_policy_secrets WHERE node = $1 AND volume = $2', [node, volume]);
      return;
    }
    await this.#db.query(
      `INSERT INTO volume_backup_policy_secrets (node, volume, sealed_env, names, updated_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (node, volume) DO UPDATE SET sealed_env = excluded.sealed_env, names = excluded.names, updated_at = excluded.updated_at`,
      [node, volume, secrets.sealedEnv, JSON.stringify(secrets.names), Date.now()],
    );
  }

  async recordReport(node: string, volume: string, backup: BackupOutcome | null, verify: VerifyOutcome | null): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query("SELECT pg_advisory_xact_lock(hashtext('volume_backup_status'), hashtext($1 || chr(10) || $2))", [node, volume]);
      const row = (await q.query<StatusRow>('SELECT * FROM volume_backup_status WHERE node = $1 AND volume = $2', [node, volume])).rows[0];
      const was = row ? statusFrom(row) : null;
      const lastBackup = backup && (!was?.lastBackup || backup.at >= was.lastBackup.at) ? backup : (was?.lastBackup ?? null);
      const lastVerify = verify && (!was?.lastVerify || verify.at >= was.lastVerify.at) ? verify : (was?.lastVerify ?? null);
      const okAt = verify?.ok && verify.at > (was?.lastVerifiedOkAt ?? 0) ? verify.at : (was?.lastVerifiedOkAt ?? null);
      await q.query(
        `INSERT INTO volume_backup_status (node, volume, last_backup, last_verify, last_verified_ok_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (node, volume) DO UPDATE SET last_backup = excluded.last_backup, last_verify = excluded.last_verify,
          last_verified_ok_at = excluded.last_verified_ok_at, updated_at = excluded.updated_at`,
        [node, volume, lastBackup ? JSON.stringify(lastBackup) : null, lastVerify ? JSON.stringify(lastVerify) : null, okAt, Date.now()],
      );
    });
  }
}
