/**
 * The operator_keys row as both engines return it (SQLite's INTEGER and PostgreSQL's BIGINT both
 * arrive as numbers), the record it maps to, and a record's column values in the INSERT's order.
 */
import type { OperatorKeyRecord } from './operator-key-store.ts';

export interface OperatorKeyRow {
  id: string;
  user_id: string;
  public_key: string;
  name: string;
  created_at: number;
  revoked_at: number | null;
}

export const operatorKeyFrom = (r: OperatorKeyRow): OperatorKeyRecord => ({
  id: r.id,
  userId: r.user_id,
  publicKey: r.public_key,
  name: r.name,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

/** operator_keys' columns, in the INSERT's order: id, user_id, public_key, name, created_at, revoked_at. */
export const operatorKeyValues = (r: OperatorKeyRecord): unknown[] => [r.id, r.userId, r.publicKey, r.name, r.createdAt, r.revokedAt];
