/**
 * What the hub keeps of per-volume backup policies (issue 14): each node's policies with the
 * revision of its set, and per volume the latest backup and verification its agent reported
 * (the volume-backup-policies migration's tables), on the hub's SQLite database; and, sealed
 * by the caller (hub-kept-secrets.ts), the passwords of hub-managed repositories and each
 * policy's environment for a URL repository (the volume-backup-repo-keys migration).
 */
import type Database from 'better-sqlite3';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import { type PolicyRow, policyFrom, policyValues, type StatusRow, statusFrom } from './volume-backup-rows.ts';
import type { BackupOutcome, VerifyOutcome, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';

export interface PolicyRecord {
  node: string;
  volume: string;
  policy: VolumeBackupPolicy;
  setBy: string;
}

export interface StatusRecord {
  node: string;
  volume: string;
  lastBackup: BackupOutcome | null;
  lastVerify: VerifyOutcome | null;
  lastVerifiedOkAt: number | null;
  updatedAt: number;
}

export interface VolumeBackupStore {
  policies(node?: string): Promise<PolicyRecord[]>;
  /** Stores (or replaces) one policy and returns the node's new set revision. */
  putPolicy(record: PolicyRecord): Promise<number>;
  /** Removes one policy; null when there was none, else the node's new set revision. */
  deletePolicy(node: string, volume: string): Promise<number | null>;
  status(node: string, volume: string): Promise<StatusRecord | null>;
  /** Every volume's status on the node, by volume name. */
  statuses(node: string): Promise<StatusRecord[]>;
  /** Keeps the newer of what is stored and what is reported, per field. */
  recordReport(node: string, volume: string, backup: BackupOutcome | null, verify: VerifyOutcome | null): Promise<void>;
  /** A hub-managed repository's sealed password; null when none was made. */
  repoKey(node: string, repository: string): Promise<string | null>;
  /** Keeps a sealed password unless one is there already; returns the one kept (the first wins). */
  putRepoKey(node: string, repository: string, sealedPassword: string, createdAt: number): Promise<string>;
  /** A policy's sealed environment and its variable names; null when none. */
  policySecrets(node: string, volume: string): Promise<{ sealedEnv: string; names: string[] } | null>;
  /** Sets (null: removes) a policy's sealed environment. */
  setPolicySecrets(node: string, volume: string, secrets: { sealedEnv: string; names: string[] } | null): Promise<void>;
}

export class SqliteVolumeBackupStore implements VolumeBackupStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  async policies(node?: string): Promise<PolicyRecord[]> {
    const rows = (
      node === undefined
        ? this.#sql.get('SELECT * FROM volume_backup_policies ORDER BY node, volume').all()
        : this.#sql.get('SELECT * FROM volume_backup_policies WHERE node = ? ORDER BY volume').all(node)
    ) as PolicyRow[];
    return rows.map(policyFrom);
  }

  #bump(node: string): number {
    const row = this.#sql
      .get(`INSERT INTO volume_backup_policy_revisions (node, revision) VALUES (?, 1)
      ON CONFLICT (node) DO UPDATE SET revision = revision + 1 RETURNING revision`)
      .get(node) as { revision: number };
    return row.revision;
  }

  async putPolicy(r: PolicyRecord): Promise<number> {
    return this.#db.transaction(() => {
      this.#sql
        .get(`INSERT INTO volume_backup_policies (node, volume, policy, set_at, set_by) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (node, volume) DO UPDATE SET policy = excluded.policy, set_at = excluded.set_at, set_by = excluded.set_by`)
        .run(...policyValues(r));
      return this.#bump(r.node);
    })();
  }

  async deletePolicy(node: string, volume: string): Promise<number | null> {
    return this.#db.transaction(() => {
      const gone = this.#sql.get('DELETE FROM volume_backup_policies WHERE node = ? AND volume = ?').run(node, volume).changes === 1;
      return gone ? this.#bump(node) : null;
    })();
  }

  async status(node: string, volume: string): Promise<StatusRecord | null> {
    const row = this.#sql.get('SELECT * FROM volume_backup_status WHERE node = ? AND volume = ?').get(node, volume) as StatusRow | undefined;
    return row ? statusFrom(row) : null;
  }

  async statuses(node: string): Promise<StatusRecord[]> {
    return (this.#sql.get('SELECT * FROM volume_backup_status WHERE node = ? ORDER BY volume').all(node) as StatusRow[]).map(statusFrom);
  }

  async repoKey(node: string, repository: string): Promise<string | null> {
    const row = this.#sql.get('SELECT sealed_password FROM volume_backup_repo_keys WHERE node = ? AND repository = ?').get(node, repository) as { sealed_password: string } | undefined;
    return row?.sealed_password ?? null;
  }

  async putRepoKey(node: string, repository: string, sealedPassword: string, createdAt: number): Promise<string> {
    return this.#db.transaction(() => {
      this.#sql
        .get('INSERT INTO volume_backup_repo_keys (node, repository, sealed_password, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (node, repository) DO NOTHING')
        .run(node, repository, sealedPassword, createdAt);
      return (this.#sql.get('SELECT sealed_password FROM volume_backup_repo_keys WHERE node = ? AND repository = ?').get(node, repository) as { sealed_password: string }).sealed_password;
    })();
  }

  async policySecrets(node: string, volume: string): Promise<{ sealedEnv: string; names: string[] } | null> {
    const row = this.#sql.get('SELECT sealed_env, names FROM volume_backup_policy_secrets WHERE node = ? AND volume = ?').get(node, volume) as { sealed_env: string; names: string } | undefined;
    return row ? { sealedEnv: row.sealed_env, names: JSON.parse(row.names) as string[] } : null;
  }

  async setPolicySecrets(node: string, volume: string, secrets: { sealedEnv: string; names: string[] } | null): Promise<void> {
    if (secrets === null) {
      this.#sql.get('DELETE FROM volume_backup_policy_secrets WHERE node = ? AND volume = ?').run(node, volume);
      return;
    }
    this.#sql
      .get(`INSERT INTO volume_backup_policy_secrets (node, volume, sealed_env, names, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (node, volume) DO UPDATE SET sealed_env = excluded.sealed_env, names = excluded.names, updated_at = excluded.updated_at`)
      .run(node, volume, secrets.sealedEnv, JSON.stringify(secrets.names), Date.now());
  }

  async recordReport(node: string, volume: string, backup: BackupOutcome | null, verify: VerifyOutcome | null): Promise<void> {
    this.#db.transaction(() => {
      const row = this.#sql.get('SELECT * FROM volume_backup_status WHERE node = ? AND volume = ?').get(node, volume) as StatusRow | undefined;
      const was = row ? statusFrom(row) : null;
      const lastBackup = backup && (!was?.lastBackup || backup.at >= was.lastBackup.at) ? backup : (was?.lastBackup ?? null);
      const lastVerify = verify && (!was?.lastVerify || verify.at >= was.lastVerify.at) ? verify : (was?.lastVerify ?? null);
      const okAt = verify?.ok && verify.at > (was?.lastVerifiedOkAt ?? 0) ? verify.at : (was?.lastVerifiedOkAt ?? null);
      this.#sql
        .get(`INSERT INTO volume_backup_status (node, volume, last_backup, last_verify, last_verified_ok_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (node, volume) DO UPDATE SET last_backup = excluded.last_backup, last_verify = excluded.last_verify,
          last_verified_ok_at = excluded.last_verified_ok_at, updated_at = excluded.updated_at`)
        .run(node, volume, lastBackup ? JSON.stringify(lastBackup) : null, lastVerify ? JSON.stringify(lastVerify) : null, okAt, Date.now());
    })();
  }
}
