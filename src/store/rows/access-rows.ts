/**
 * The access tables' rows (node grants, users, API tokens, enrollment codes) as both engines
 * return them and the records they map to. Stored flags are INTEGER 0/1 on both engines; only a
 * computed `IS NOT NULL` differs (SQLite: 0/1, PostgreSQL: boolean), noted where it is read.
 */
import type { GrantRecord, PendingCode, TokenSummary, TokenUse, UserSummary } from '../access-store.ts';
import type { UserRole } from '../store.ts';

export interface GrantRow {
  id: string;
  user_id: string;
  node_name: string | null;
  label_key: string | null;
  label_value: string | null;
  role: GrantRecord['role'];
  created_at: number;
}

export const grantFrom = (r: GrantRow): GrantRecord => ({
  id: r.id,
  userId: r.user_id,
  node: r.node_name,
  labelKey: r.label_key,
  labelValue: r.label_value,
  role: r.role,
  createdAt: r.created_at,
});

/** node_grants' columns, in the INSERT's order: id, user_id, node_name, label_key, label_value, role, created_at. */
export const grantValues = (g: GrantRecord): unknown[] => [g.id, g.userId, g.node, g.labelKey, g.labelValue, g.role, g.createdAt];

/** A users row as the summary query selects it (`password_hash IS NOT NULL AS has_password`). */
export interface UserSummaryRow {
  id: string;
  name: string;
  role: UserRole;
  scoped: number;
  /** SQLite gives a comparison as 0/1, PostgreSQL as a boolean. */
  has_password: number | boolean;
  created_at: number;
  disabled_at: number | null;
}

export const userSummaryFrom = (r: UserSummaryRow): UserSummary => ({
  id: r.id,
  name: r.name,
  role: r.role,
  scoped: r.scoped === 1,
  hasPassword: r.has_password === 1 || r.has_password === true,
  createdAt: r.created_at,
  disabledAt: r.disabled_at,
});

export interface TokenUseRow {
  expires_at: number | null;
  last_used_at: number | null;
}

export const tokenUseFrom = (r: TokenUseRow): TokenUse => ({ expiresAt: r.expires_at, lastUsedAt: r.last_used_at });

export interface TokenSummaryRow {
  token_hash: string;
  name: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

export const tokenSummaryFrom = (r: TokenSummaryRow): TokenSummary => ({
  tokenHash: r.token_hash,
  name: r.name,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
});

export interface PendingCodeRow {
  secret_hash: string;
  kind: PendingCode['kind'];
  node_name: string | null;
  created_at: number;
  expires_at: number;
}

export const pendingCodeFrom = (r: PendingCodeRow): PendingCode => ({
  secretHash: r.secret_hash,
  kind: r.kind,
  nodeName: r.node_name,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
