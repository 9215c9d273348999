/**
 * The hub's durable truth. The core declares this interface; each database is a folder beside
 * it (sqlite/ today) that fills it in. Methods are async so a networked database fits too.
 * A method that fails because the storage is full, failing or read-only rejects with the
 * DockfleetError `storage_full`, so callers refuse changes instead of acting unrecorded.
 */
import type { VolumeBackupStore } from '../hub/volume-backups/volume-backup-store.ts';
import type { RebuildStore } from '../hub/rebuild/rebuild-store.ts';
import type { AgentUpgradeStore } from '../hub/releases/upgrade-store.ts';
import type { RegistryStore } from '../hub/registry-auth/registry-store.ts';
import type { EngineFacts, InventorySection } from '../protocol/inventory.ts';
import type { CodeKind } from '../protocol/enrollment-code.ts';
import type { AccessStore } from './access-store.ts';
import type { JobStore } from './job-store.ts';
import type { StackStore } from './stack-store.ts';
import type { CertStore } from './cert-store.ts';
import type { AlertStore } from './alert-store.ts';
import type { OperatorKeyStore } from '../hub/operator-keys/operator-key-store.ts';
import type { AuditChainStore } from '../hub/audit-chain/sqlite-audit-chain.ts';

export type NodeState = 'pending' | 'active' | 'revoked';

export interface NodeRecord {
  id: string;
  name: string;
  state: NodeState;
  createdAt: number;
  approvedAt: number | null;
  revokedAt: number | null;
  lastSeen: number | null;
  facts: EngineFacts | null;
}

export interface NodeKeyRecord {
  keyId: string;
  nodeId: string;
  publicKey: string;
  state: 'active' | 'retired';
  createdAt: number;
}

export interface CodeRecord {
  secretHash: string;
  kind: CodeKind;
  nodeName: string | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export type UserRole = 'admin' | 'operator' | 'viewer';

export interface UserRecord {
  id: string;
  name: string;
  role: UserRole;
  createdAt: number;
  disabledAt: number | null;
}

export interface TokenRecord {
  tokenHash: string;
  name: string;
  userId: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface SessionRecord {
  idHash: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
}

export interface ClientCertRecord {
  serial: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

/** A call that is already over, written in one step (e.g. a failed sign-in). */
export interface AuditEntry {
  at: number;
  user: string;
  node: string | null;
  method: string;
  path: string;
  status: number;
}

/** What is about to happen, written before the call is forwarded. */
export interface AuditIntent {
  startedAt: number;
  user: string;
  node: string | null;
  method: string;
  path: string;
}

/** How it ended, written after. */
export interface AuditOutcome {
  status: number;
  finishedAt: number;
  bytes: number | null;
}

/** One row: `at` is when the call started; `status` and `finishedAt` are null while (or, after
 * a crash, forever) its outcome is unknown. */
export interface AuditRow {
  id: number;
  at: number;
  user: string;
  node: string | null;
  method: string;
  path: string;
  status: number | null;
  finishedAt: number | null;
  bytes: number | null;
}

export interface AuditQuery {
  user?: string;
  node?: string;
  /** Only rows on these nodes (what a non-admin may see). */
  nodes?: readonly string[];
  since?: number;
  until?: number;
  limit: number;
  /** Entries with an id below this (paging backwards). */
  before?: number;
}

export interface InventoryRecord {
  section: InventorySection;
  items: unknown[];
  updatedAt: number;
}

export interface Store {
  /** The job queue's tables (hub/jobs/). */
  readonly jobs: JobStore;
  /** Stacks, their revisions, node labels (hub/stacks/). */
  readonly stacks: StackStore;
  /** The edge's TLS certificates, keys sealed (hub/edge/certs/). */
  readonly certs: CertStore;
  /** Alerts: incidents, receivers (targets sealed) and deliveries (hub/alerts/). */
  readonly alerts: AlertStore;
  /** Node grants, user administration, token use, pending codes (hub/access/). */
  readonly access: AccessStore;
  /** Registry credentials, secrets sealed (hub/registry-auth/). */
  readonly registries: RegistryStore;
  /** Operator keys' public halves, per user (hub/operator-keys/). */
  readonly operatorKeys: OperatorKeyStore;
  /** The hub's audit log's hash chain (src/hub/audit-chain/). */
  readonly auditChain: AuditChainStore;
  /** Per-volume backup policies and the latest outcomes agents reported (hub/volume-backups/). */
  readonly volumeBackups: VolumeBackupStore;
  /** Escrowed volume keys, replacement codes and host rebuilds (hub/rebuild/). */
  readonly rebuilds: RebuildStore;
  /** Agent upgrade rollouts and their per-node steps (hub/releases/). */
  readonly agentUpgrades: AgentUpgradeStore;
  /** Applies pending migrations; returns the names it applied, in order. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;

  listNodes(): Promise<NodeRecord[]>;
  getNodeByName(name: string): Promise<NodeRecord | null>;
  getNodeById(id: string): Promise<NodeRecord | null>;
  /** Creates a node and its first key atomically. Fails with name_taken for a live name. */
  createNode(node: NodeRecord, key: NodeKeyRecord): Promise<void>;
  setNodeState(id: string, state: NodeState, at: number): Promise<void>;
  touchNodes(seen: ReadonlyArray<{ id: string; lastSeen: number }>): Promise<void>;
  setNodeFacts(id: string, facts: EngineFacts | null): Promise<void>;

  getNodeKey(keyId: string): Promise<NodeKeyRecord | null>;
  /** Makes `key` the node's only active key; every other key of the node is retired for good. */
  replaceNodeKey(nodeId: string, key: NodeKeyRecord, at: number): Promise<void>;

  insertCode(code: CodeRecord): Promise<void>;
  getCode(secretHash: string): Promise<CodeRecord | null>;
  /** Marks a single-use code used; false when it was used already (a lost race). */
  markCodeUsed(secretHash: string, at: number): Promise<boolean>;
  /** Single-use redemption in one transaction: mark the code used and create the node. */
  redeemCode(secretHash: string, at: number, node: NodeRecord, key: NodeKeyRecord): Promise<void>;

  insertToken(token: TokenRecord): Promise<void>;
  getToken(tokenHash: string): Promise<TokenRecord | null>;

  insertUser(user: UserRecord): Promise<void>;
  getUser(id: string): Promise<UserRecord | null>;
  getUserByName(name: string): Promise<UserRecord | null>;
  getPasswordHash(userId: string): Promise<string | null>;
  setPasswordHash(userId: string, hash: string): Promise<void>;
  /** Whether any user can sign in with a password (else the UI offers first-run setup). */
  hasPasswordUser(): Promise<boolean>;
  /** Creates the first password user, only if none exists yet (atomic): false if one does. */
  createFirstPasswordUser(user: UserRecord, passwordHash: string): Promise<boolean>;

  listTokens(userId: string): Promise<TokenRecord[]>;
  revokeToken(tokenHash: string, userId: string, at: number): Promise<boolean>;

  insertSession(session: SessionRecord): Promise<void>;
  getSession(idHash: string): Promise<SessionRecord | null>;
  deleteSession(idHash: string): Promise<void>;
  /** Ends a user's sessions, all or all but one. */
  deleteSessionsOfUser(userId: string, exceptIdHash?: string): Promise<number>;

  insertClientCert(cert: ClientCertRecord): Promise<void>;
  getClientCert(serial: string): Promise<ClientCertRecord | null>;
  revokeClientCert(serial: string, at: number): Promise<boolean>;

  /** Writes a finished call in one step. */
  appendAudit(entry: AuditEntry): Promise<void>;
  /** Writes an intent durably (it survives a crash of the hub) and returns its row id. */
  beginAudit(intent: AuditIntent): Promise<number>;
  finishAudit(id: number, outcome: AuditOutcome): Promise<void>;
  queryAudit(query: AuditQuery): Promise<AuditRow[]>;

  saveInventory(nodeId: string, section: InventorySection, items: unknown[], at: number): Promise<void>;
  loadInventory(nodeId: string): Promise<InventoryRecord[]>;
}
