/**
 * AccessStore on PostgreSQL (the access-grants migration's columns and table, and the users,
 * tokens and codes tables it extends, translated). Flags stored as 0/1 stay numbers, as in
 * SQLite; each change is one statement or, for disabling a user, one transaction.
 */
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
import { DockfleetError } from '../../protocol/errors.ts';
import type { PgDb } from './db.ts';

export class PostgresAccessStore implements AccessStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async listUsers(): Promise<UserSummary[]> {
    const { rows } = await this.#db.query<UserSummaryRow>(
      `SELECT id, name, role, scoped, password_hash IS NOT NULL AS has_password, created_at, disabled_at
      FROM users ORDER BY name COLLATE "C"`,
    );
    return rows.map(userSummaryFrom);
  }

  async isScoped(userId: string): Promise<boolean> {
    const { rows } = await this.#db.query<{ scoped: number }>('SELECT scoped FROM users WHERE id = $1', [userId]);
    return rows[0]?.scoped === 1;
  }

  async setUserAccess(userId: string, role: UserRole, scoped: boolean): Promise<boolean> {
    return (await this.#db.query('UPDATE users SET role = $1, scoped = $2 WHERE id = $3', [role, scoped ? 1 : 0, userId])).rowCount === 1;
  }

  async setUserDisabled(userId: string, at: number | null): Promise<boolean> {
    return this.#db.tx(async (q) => {
      const changed = (await q.query('UPDATE users SET disabled_at = $1 WHERE id = $2', [at, userId])).rowCount === 1;
      if (changed && at !== null) await q.query('DELETE FROM sessions WHERE user_id = $1', [userId]);
      return changed;
    });
  }

  async listGrants(userId: string): Promise<GrantRecord[]> {
    return (await this.#db.query<GrantRow>('SELECT * FROM node_grants WHERE user_id = $1 ORDER BY created_at, id COLLATE "C"', [userId])).rows.map(grantFrom);
  }

  async insertGrant(g: GrantRecord): Promise<void> {
    await this.#db.query('INSERT INTO node_grants (id, user_id, node_name, label_key, label_value, role, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', grantValues(g));
  }

  async deleteGrant(userId: string, id: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM node_grants WHERE id = $1 AND user_id = $2', [id, userId])).rowCount === 1;
  }

  async tokenUse(tokenHash: string): Promise<TokenUse | null> {
    const { rows } = await this.#db.query<TokenUseRow>('SELECT expires_at, last_used_at FROM api_tokens WHERE token_hash = $1', [tokenHash]);
    const row = rows[0];
    return row ? tokenUseFrom(row) : null;
  }

  async setTokenExpiry(tokenHash: string, expiresAt: number | null): Promise<void> {
    await this.#db.query('UPDATE api_tokens SET expires_at = $1 WHERE token_hash = $2', [expiresAt, tokenHash]);
  }

  /** Best effort: with the database away a token still works for reads, its last use is not recorded. */
  async touchToken(tokenHash: string, at: number, notBefore: number): Promise<void> {
    await this.#db.query('UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 AND (last_used_at IS NULL OR last_used_at < $3)', [at, tokenHash, notBefore]).catch((err: unknown) => {
      if (!(err instanceof DockfleetError && err.code === 'store_unavailable')) throw err;
    });
  }

  async listTokenSummaries(userId: string): Promise<TokenSummary[]> {
    const { rows } = await this.#db.query<TokenSummaryRow>(
      'SELECT token_hash, name, created_at, expires_at, last_used_at FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, token_hash COLLATE "C"',
      [userId],
    );
    return rows.map(tokenSummaryFrom);
  }

  async listPendingCodes(now: number): Promise<PendingCode[]> {
    const { rows } = await this.#db.query<PendingCodeRow>(
      'SELECT secret_hash, kind, node_name, created_at, expires_at FROM enrollment_codes WHERE used_at IS NULL AND expires_at > $1 ORDER BY created_at, secret_hash COLLATE "C"',
      [now],
    );
    return rows.map(pendingCodeFrom);
  }

  async revokeCode(secretHash: string, now: number): Promise<boolean> {
    return (await this.#db.query('UPDATE enrollment_codes SET expires_at = $1 WHERE secret_hash = $2 AND used_at IS NULL AND expires_at > $1', [now, secretHash])).rowCount === 1;
  }
}
