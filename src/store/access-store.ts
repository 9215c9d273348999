/**
 * Who may reach which nodes, and the bookkeeping around people (hub/access/): node grants,
 * the `scoped` flag of a user (no fleet-wide rights, grants only), user administration,
 * token expiry and last use, and the listing and revoking of enrollment codes and join tokens.
 * Filled in by each database folder (sqlite/sqlite-access-store.ts). Secrets are never stored
 * here in plaintext: tokens and codes are known by the hash of their secret.
 */
import type { CodeKind } from '../protocol/enrollment-code.ts';
import type { UserRole } from './store.ts';

export type GrantRole = 'operator' | 'viewer';

/** A role on the nodes a grant covers: one node by name, or every node with a label. */
export interface GrantRecord {
  id: string;
  userId: string;
  node: string | null;
  labelKey: string | null;
  labelValue: string | null;
  role: GrantRole;
  createdAt: number;
}

export interface UserSummary {
  id: string;
  name: string;
  role: UserRole;
  scoped: boolean;
  hasPassword: boolean;
  createdAt: number;
  disabledAt: number | null;
}

export interface TokenUse {
  expiresAt: number | null;
  lastUsedAt: number | null;
}

export interface TokenSummary extends TokenUse {
  tokenHash: string;
  name: string;
  createdAt: number;
}

export interface PendingCode {
  secretHash: string;
  kind: CodeKind;
  nodeName: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface AccessStore {
  listUsers(): Promise<UserSummary[]>;
  isScoped(userId: string): Promise<boolean>;
  /** Role and scope together; false when there is no such user. */
  setUserAccess(userId: string, role: UserRole, scoped: boolean): Promise<boolean>;
  /** Disables (a time) or enables (null); disabling also ends the user's sessions. */
  setUserDisabled(userId: string, at: number | null): Promise<boolean>;

  listGrants(userId: string): Promise<GrantRecord[]>;
  insertGrant(grant: GrantRecord): Promise<void>;
  deleteGrant(userId: string, id: string): Promise<boolean>;

  tokenUse(tokenHash: string): Promise<TokenUse | null>;
  setTokenExpiry(tokenHash: string, expiresAt: number | null): Promise<void>;
  /** Records a use unless one was recorded since `notBefore`. */
  touchToken(tokenHash: string, at: number, notBefore: number): Promise<void>;
  /** A user's live (unrevoked) tokens with their expiry and last use. */
  listTokenSummaries(userId: string): Promise<TokenSummary[]>;

  /** Enrollment codes and join tokens neither used nor expired. */
  listPendingCodes(now: number): Promise<PendingCode[]>;
  /** Ends a pending code at once (it expires now); false when none matched. */
  revokeCode(secretHash: string, now: number): Promise<boolean>;
}
