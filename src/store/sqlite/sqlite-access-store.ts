/** AccessStore on the hub's SQLite database (the access-grants migration's columns and table). */
import type Database from 'better-sqlite3';
import type { AccessStore, GrantRecord, PendingCode, TokenSummary, TokenUse, UserSummary } from '../access-store.ts';
import {
  type GrantRow,
  grantFrom,
  grantValues,
  type PendingCodeRow,
  pendingCodeFrom,
  type TokenSummaryRow,
  type TokenUseRow,
  tokenSummaryFrom,
  tokenUseFrom,
  type UserSummaryRow,
  userSummaryFrom,
} from '../rows/access-rows.ts';
import type { UserRole } from '../store.ts';
import { StatementCache } from './statement-cache.ts';

export class SqliteAccessStore implements AccessStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  async listUsers(): Promise<UserSummary[]> {
    const rows = this.#sql
      .get(`SELECT id, name, role, scoped, password_hash IS NOT NULL AS has_password, created_at, disabled_at
      FROM users ORDER BY name`)
      .all() as UserSummaryRow[];
    return rows.map(userSummaryFrom);
  }

  async isScoped(userId: string): Promise<boolean> {
    const row = this.#sql.get('SELECT scoped FROM users WHERE id = ?').get(userId) as { scoped: number } | undefined;
    return row?.scoped === 1;
  }

  async setUserAccess(userId: string, role: UserRole, scoped: boolean): Promise<boolean> {
    return this.#sql.get('UPDATE users SET role = ?, scoped = ? WHERE id = ?').run(role, scoped ? 1 : 0, userId).changes === 1;
  }

  async setUserDisabled(userId: string, at: number | null): Promise<boolean> {
    return this.#db
      .transaction(() => {
        const changed = this.#sql.get('UPDATE users SET disabled_at = ? WHERE id = ?').run(at, userId).changes === 1;
        if (changed && at !== null) this.#sql.get('DELETE FROM sessions WHERE user_id = ?').run(userId);
        return changed;
      })
      .immediate();
  }

  async listGrants(userId: string): Promise<GrantRecord[]> {
    return (this.#sql.get('SELECT * FROM node_grants WHERE user_id = ? ORDER BY created_at, id').all(userId) as GrantRow[]).map(grantFrom);
  }

  async insertGrant(g: GrantRecord): Promise<void> {
    this.#sql.get('INSERT INTO node_grants (id, user_id, node_name, label_key, label_value, role, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...grantValues(g));
  }

  async deleteGrant(userId: string, id: string): Promise<boolean> {
    return this.#sql.get('DELETE FROM node_grants WHERE id = ? AND user_id = ?').run(id, userId).changes === 1;
  }

  async tokenUse(tokenHash: string): Promise<TokenUse | null> {
    const row = this.#sql.get('SELECT expires_at, last_used_at FROM api_tokens WHERE token_hash = ?').get(tokenHash) as TokenUseRow | undefined;
    return row ? tokenUseFrom(row) : null;
  }

  async setTokenExpiry(tokenHash: string, expiresAt: number | null): Promise<void> {
    this.#sql.get('UPDATE api_tokens SET expires_at = ? WHERE token_hash = ?').run(expiresAt, tokenHash);
  }

  async touchToken(tokenHash: string, at: number, notBefore: number): Promise<void> {
    this.#sql.get('UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(at, tokenHash, notBefore);
  }

  async listTokenSummaries(userId: string): Promise<TokenSummary[]> {
    const rows = this.#sql
      .get('SELECT token_hash, name, created_at, expires_at, last_used_at FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at')
      .all(userId) as TokenSummaryRow[];
    return rows.map(tokenSummaryFrom);
  }

  async listPendingCodes(now: number): Promise<PendingCode[]> {
    const rows = this.#sql
      .get('SELECT secret_hash, kind, node_name, created_at, expires_at FROM enrollment_codes WHERE used_at IS NULL AND expires_at > ? ORDER BY created_at')
      .all(now) as PendingCodeRow[];
    return rows.map(pendingCodeFrom);
  }

  async revokeCode(secretHash: string, now: number): Promise<boolean> {
    return this.#sql.get('UPDATE enrollment_codes SET expires_at = ? WHERE secret_hash = ? AND used_at IS NULL AND expires_at > ?').run(now, secretHash, now).changes === 1;
  }
}
