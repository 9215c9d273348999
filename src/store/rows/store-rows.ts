/**
 * The Store's own tables' rows (nodes, users, API tokens, sessions, enrollment codes,
 * node inventory) as both
 * engines return them (SQLite's INTEGER and PostgreSQL's BIGINT both arrive as numbers), the
 * records they map to, and the column values of a node and of an enrollment code in the order
 * the stores' INSERTs list them (the rebuild stores insert codes too).
 */
import type { InventorySection } from '../../protocol/inventory.ts';
import type { CodeRecord, InventoryRecord, NodeRecord, NodeState, SessionRecord, TokenRecord, UserRecord } from '../store.ts';

export interface NodeRow {
  id: string;
  name: string;
  state: NodeState;
  created_at: number;
  approved_at: number | null;
  revoked_at: number | null;
  last_seen: number | null;
  facts: string | null;
}

export function nodeFrom(row: NodeRow): NodeRecord {
  return {
    id: row.id,
    name: row.name,
    state: row.state,
    createdAt: row.created_at,
    approvedAt: row.approved_at,
    revokedAt: row.revoked_at,
    lastSeen: row.last_seen,
    facts: row.facts === null ? null : (JSON.parse(row.facts) as NodeRecord['facts']),
  };
}

/** The facts column's text: none (or empty facts) is NULL. */
export const factsValue = (facts: NodeRecord['facts']): string | null => (facts ? JSON.stringify(facts) : null);

/** nodes' columns, in the INSERT's order: id, name, state, created_at, approved_at, revoked_at, last_seen, facts. */
export const nodeValues = (node: NodeRecord): unknown[] => [node.id, node.name, node.state, node.createdAt, node.approvedAt, node.revokedAt, node.lastSeen, factsValue(node.facts)];

export interface UserRow {
  id: string;
  name: string;
  role: UserRecord['role'];
  created_at: number;
  disabled_at: number | null;
}

export function userFrom(row: UserRow | undefined): UserRecord | null {
  return row ? { id: row.id, name: row.name, role: row.role, createdAt: row.created_at, disabledAt: row.disabled_at } : null;
}

export interface TokenRow {
  token_hash: string;
  name: string;
  user_id: string;
  created_at: number;
  revoked_at: number | null;
}

export const tokenFrom = (r: TokenRow): TokenRecord => ({ tokenHash: r.token_hash, name: r.name, userId: r.user_id, createdAt: r.created_at, revokedAt: r.revoked_at });

export interface SessionRow {
  id_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
}

export const sessionFrom = (r: SessionRow): SessionRecord => ({ idHash: r.id_hash, userId: r.user_id, createdAt: r.created_at, expiresAt: r.expires_at });

export interface InventoryRow {
  section: InventorySection;
  items: string;
  updated_at: number;
}

export const inventoryFrom = (r: InventoryRow): InventoryRecord => ({ section: r.section, items: JSON.parse(r.items) as unknown[], updatedAt: r.updated_at });

export interface CodeRow {
  secret_hash: string;
  kind: CodeRecord['kind'];
  node_name: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export const codeFrom = (r: CodeRow): CodeRecord => ({
  secretHash: r.secret_hash,
  kind: r.kind,
  nodeName: r.node_name,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  usedAt: r.used_at,
});

/** enrollment_codes' columns, in the INSERT's order: secret_hash, kind, node_name, created_at, expires_at, used_at. */
export const codeValues = (code: CodeRecord): unknown[] => [code.secretHash, code.kind, code.nodeName, code.createdAt, code.expiresAt, code.usedAt];
