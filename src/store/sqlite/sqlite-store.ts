/** The embedded store: one SQLite file (WAL) through better-sqlite3. */
import Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';
import type { InventorySection } from '../../protocol/inventory.ts';
import type {
  AuditEntry,
  AuditIntent,
  AuditOutcome,
  AuditQuery,
  AuditRow,
  ClientCertRecord,
  CodeRecord,
  InventoryRecord,
  NodeKeyRecord,
  NodeRecord,
  NodeState,
  SessionRecord,
  Store,
  TokenRecord,
  UserRecord,
} from '../store.ts';
import type { JobStore } from '../job-store.ts';
import type { StackStore } from '../stack-store.ts';
import type { CertStore } from '../cert-store.ts';
import {
  type CodeRow,
  codeFrom,
  codeValues,
  factsValue,
  type InventoryRow,
  inventoryFrom,
  type NodeRow,
  nodeFrom,
  nodeValues,
  type SessionRow,
  sessionFrom,
  type TokenRow,
  tokenFrom,
  type UserRow,
  userFrom,
} from '../rows/store-rows.ts';
import { applyMigrations } from './migrate.ts';
import { SqliteJobStore } from './sqlite-job-store.ts';
import { SqliteStackStore } from './sqlite-stack-store.ts';
import { SqliteCertStore } from './sqlite-cert-store.ts';
import { SqliteAlertStore } from './sqlite-alert-store.ts';
import type { AlertStore } from '../alert-store.ts';
import { SqliteAccessStore } from './sqlite-access-store.ts';
import type { AccessStore } from '../access-store.ts';
import { SqliteRegistryStore } from '../../hub/registry-auth/sqlite-registry-store.ts';
import type { RegistryStore } from '../../hub/registry-auth/registry-store.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';
import { SqliteOperatorKeyStore } from '../../hub/operator-keys/sqlite-operator-key-store.ts';
import type { OperatorKeyStore } from '../../hub/operator-keys/operator-key-store.ts';
import { SqliteVolumeBackupStore } from '../../hub/volume-backups/volume-backup-store.ts';
import { SqliteRebuildStore } from '../../hub/rebuild/rebuild-store.ts';
import { SqliteAgentUpgradeStore } from '../../hub/releases/upgrade-store.ts';
import { AUDIT_CHAIN_MIGRATION, SqliteAuditChain } from '../../hub/audit-chain/sqlite-audit-chain.ts';

export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;
  readonly jobs: JobStore;
  readonly stacks: StackStore;
  readonly certs: CertStore;
  readonly alerts: AlertStore;
  readonly access: AccessStore;
  readonly registries: RegistryStore;
  readonly operatorKeys: OperatorKeyStore;
  readonly auditChain: SqliteAuditChain;
  readonly volumeBackups: SqliteVolumeBackupStore;
  readonly rebuilds: SqliteRebuildStore;
  readonly agentUpgrades: SqliteAgentUpgradeStore;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    this.#sql = new StatementCache(this.#db);
    this.jobs = new SqliteJobStore(this.#db);
    this.stacks = new SqliteStackStore(this.#db);
    this.certs = new SqliteCertStore(this.#db);
    this.alerts = new SqliteAlertStore(this.#db);
    this.access = new SqliteAccessStore(this.#db);
    this.registries = new SqliteRegistryStore(this.#db);
    this.operatorKeys = new SqliteOperatorKeyStore(this.#db);
    this.auditChain = new SqliteAuditChain(this.#db);
    this.volumeBackups = new SqliteVolumeBackupStore(this.#db);
    this.rebuilds = new SqliteRebuildStore(this.#db);
    this.agentUpgrades = new SqliteAgentUpgradeStore(this.#db);
  }

  #stmt(sql: string): Database.Statement {
    return this.#sql.get(sql);
  }

  async migrate(): Promise<string[]> {
    const applied = applyMigrations(this.#db);
    // Rows from before the audit chain are chained once, as they are when it is created.
    if (applied.includes(AUDIT_CHAIN_MIGRATION)) this.auditChain.seedExisting();
    return applied;
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  async listNodes(): Promise<NodeRecord[]> {
    // Ordered so that, per name, a live record comes last and wins; a name with only revoked
    // records shows its newest one (as revoked) until the name is enrolled again.
    const rows = this.#stmt("SELECT * FROM nodes ORDER BY name, (state <> 'revoked'), created_at").all() as NodeRow[];
    const byName = new Map<string, NodeRecord>();
    for (const row of rows) byName.set(row.name, nodeFrom(row));
    return [...byName.values()];
  }

  async getNodeByName(name: string): Promise<NodeRecord | null> {
    const row = this.#stmt("SELECT * FROM nodes WHERE name = ? ORDER BY (state = 'revoked'), created_at DESC LIMIT 1").get(name) as NodeRow | undefined;
    return row ? nodeFrom(row) : null;
  }

  async getNodeById(id: string): Promise<NodeRecord | null> {
    const row = this.#stmt('SELECT * FROM nodes WHERE id = ?').get(id) as NodeRow | undefined;
    return row ? nodeFrom(row) : null;
  }

  #insertNode(node: NodeRecord, key: NodeKeyRecord): void {
    try {
      this.#stmt('INSERT INTO nodes (id, name, state, created_at, approved_at, revoked_at, last_seen, facts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(...nodeValues(node));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new DockfleetError('name_taken', `a node named ${node.name} already exists`);
      }
      throw err;
    }
    this.#stmt('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES (?, ?, ?, ?, ?)').run(key.keyId, key.nodeId, key.publicKey, key.state, key.createdAt);
  }

  async createNode(node: NodeRecord, key: NodeKeyRecord): Promise<void> {
    this.#db.transaction(() => this.#insertNode(node, key))();
  }

  async setNodeState(id: string, state: NodeState, at: number): Promise<void> {
    const column = state === 'active' ? 'approved_at' : state === 'revoked' ? 'revoked_at' : null;
    this.#db.transaction(() => {
      if (column) this.#stmt(`UPDATE nodes SET state = ?, ${column} = ? WHERE id = ?`).run(state, at, id);
      else this.#stmt('UPDATE nodes SET state = ? WHERE id = ?').run(state, id);
      if (state === 'revoked') {
        this.#stmt("UPDATE node_keys SET state = 'retired', retired_at = ? WHERE node_id = ? AND state = 'active'").run(at, id);
      }
    })();
  }

  async touchNodes(seen: ReadonlyArray<{ id: string; lastSeen: number }>): Promise<void> {
    const stmt = this.#stmt('UPDATE nodes SET last_seen = ? WHERE id = ?');
    this.#db.transaction(() => {
      for (const s of seen) stmt.run(s.lastSeen, s.id);
    })();
  }

  async setNodeFacts(id: string, facts: NodeRecord['facts']): Promise<void> {
    this.#stmt('UPDATE nodes SET facts = ? WHERE id = ?').run(factsValue(facts), id);
  }

  async getNodeKey(keyId: string): Promise<NodeKeyRecord | null> {
    const row = this.#stmt('SELECT key_id, node_id, public_key, state, created_at FROM node_keys WHERE key_id = ?').get(keyId) as
      | { key_id: string; node_id: string; public_key: string; state: 'active' | 'retired'; created_at: number }
      | undefined;
    return row ? { keyId: row.key_id, nodeId: row.node_id, publicKey: row.public_key, state: row.state, createdAt: row.created_at } : null;
  }

  async replaceNodeKey(nodeId: string, key: NodeKeyRecord, at: number): Promise<void> {
    this.#db.transaction(() => {
      this.#stmt("UPDATE node_keys SET state = 'retired', retired_at = ? WHERE node_id = ? AND state = 'active'").run(at, nodeId);
      this.#stmt('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES (?, ?, ?, ?, ?)').run(key.keyId, nodeId, key.publicKey, 'active', key.createdAt);
    })();
  }

  async insertCode(code: CodeRecord): Promise<void> {
    this.#stmt('INSERT INTO enrollment_codes (secret_hash, kind, node_name, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)').run(...codeValues(code));
  }

  async getCode(secretHash: string): Promise<CodeRecord | null> {
    const row = this.#stmt('SELECT * FROM enrollment_codes WHERE secret_hash = ?').get(secretHash) as CodeRow | undefined;
    return row ? codeFrom(row) : null;
  }

  async markCodeUsed(secretHash: string, at: number): Promise<boolean> {
    return this.#stmt('UPDATE enrollment_codes SET used_at = ? WHERE secret_hash = ? AND used_at IS NULL').run(at, secretHash).changes === 1;
  }

  async redeemCode(secretHash: string, at: number, node: NodeRecord, key: NodeKeyRecord): Promise<void> {
    this.#db.transaction(() => {
      const changed = this.#stmt('UPDATE enrollment_codes SET used_at = ? WHERE secret_hash = ? AND used_at IS NULL').run(at, secretHash).changes;
      if (changed !== 1) throw new DockfleetError('code_used', 'enrollment code was already used');
      this.#insertNode(node, key);
    })();
  }

  async insertToken(token: TokenRecord): Promise<void> {
    this.#stmt('INSERT INTO api_tokens (token_hash, name, user_id, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)').run(token.tokenHash, token.name, token.userId, token.createdAt, token.revokedAt);
  }

  async getToken(tokenHash: string): Promise<TokenRecord | null> {
    const row = this.#stmt('SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash) as TokenRow | undefined;
    return row ? tokenFrom(row) : null;
  }

  async insertUser(user: UserRecord): Promise<void> {
    try {
      this.#stmt('INSERT INTO users (id, name, role, created_at, disabled_at) VALUES (?, ?, ?, ?, ?)').run(user.id, user.name, user.role, user.createdAt, user.disabledAt);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw new DockfleetError('name_taken', `a user named ${user.name} already exists`);
      throw err;
    }
  }

  async getUser(id: string): Promise<UserRecord | null> {
    return userFrom(this.#stmt('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined);
  }

  async getUserByName(name: string): Promise<UserRecord | null> {
    return userFrom(this.#stmt('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined);
  }

  async getPasswordHash(userId: string): Promise<string | null> {
    const row = this.#stmt('SELECT password_hash FROM users WHERE id = ?').get(userId) as { password_hash: string | null } | undefined;
    return row?.password_hash ?? null;
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    this.#stmt('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, userId);
  }

  async hasPasswordUser(): Promise<boolean> {
    return this.#stmt('SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1').get() !== undefined;
  }

  async createFirstPasswordUser(user: UserRecord, passwordHash: string): Promise<boolean> {
    return this.#db
      .transaction(() => {
        if (this.#stmt('SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1').get() !== undefined) return false;
        this.#stmt('INSERT INTO users (id, name, role, created_at, disabled_at, password_hash) VALUES (?, ?, ?, ?, ?, ?)').run(
          user.id,
          user.name,
          user.role,
          user.createdAt,
          user.disabledAt,
          passwordHash,
        );
        return true;
      })
      .immediate();
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    const rows = this.#stmt('SELECT * FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at').all(userId) as TokenRow[];
    return rows.map(tokenFrom);
  }

  async revokeToken(tokenHash: string, userId: string, at: number): Promise<boolean> {
    return this.#stmt('UPDATE api_tokens SET revoked_at = ? WHERE token_hash = ? AND user_id = ? AND revoked_at IS NULL').run(at, tokenHash, userId).changes === 1;
  }

  async insertSession(session: SessionRecord): Promise<void> {
    this.#stmt('INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(session.idHash, session.userId, session.createdAt, session.expiresAt);
  }

  async getSession(idHash: string): Promise<SessionRecord | null> {
    const row = this.#stmt('SELECT * FROM sessions WHERE id_hash = ?').get(idHash) as SessionRow | undefined;
    return row ? sessionFrom(row) : null;
  }

  async deleteSession(idHash: string): Promise<void> {
    this.#stmt('DELETE FROM sessions WHERE id_hash = ?').run(idHash);
  }

  async deleteSessionsOfUser(userId: string, exceptIdHash?: string): Promise<number> {
    return this.#stmt('DELETE FROM sessions WHERE user_id = ? AND id_hash IS NOT ?').run(userId, exceptIdHash ?? null).changes;
  }

  async insertClientCert(cert: ClientCertRecord): Promise<void> {
    this.#stmt('INSERT INTO client_certs (serial, user_id, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?)').run(cert.serial, cert.userId, cert.createdAt, cert.expiresAt, cert.revokedAt);
  }

  async getClientCert(serial: string): Promise<ClientCertRecord | null> {
    const row = this.#stmt('SELECT * FROM client_certs WHERE serial = ?').get(serial) as
      | { serial: string; user_id: string; created_at: number; expires_at: number; revoked_at: number | null }
      | undefined;
    return row ? { serial: row.serial, userId: row.user_id, createdAt: row.created_at, expiresAt: row.expires_at, revokedAt: row.revoked_at } : null;
  }

  async revokeClientCert(serial: string, at: number): Promise<boolean> {
    return this.#stmt('UPDATE client_certs SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL').run(at, serial).changes === 1;
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    // Each audit write and its chain entry (src/hub/audit-chain/) are one transaction.
    this.#db.transaction(() => {
      const id = Number(
        this.#stmt('INSERT INTO audit_log (at, user, node, method, path, status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
          entry.at,
          entry.user,
          entry.node,
          entry.method,
          entry.path,
          entry.status,
          entry.at,
        ).lastInsertRowid,
      );
      this.auditChain.append('record', id, { at: entry.at, user: entry.user, node: entry.node, method: entry.method, path: entry.path, status: entry.status, finishedAt: entry.at, bytes: null });
    })();
  }

  async beginAudit(intent: AuditIntent): Promise<number> {
    // Committed on return: in WAL mode the row is in the log file before the call goes on, so
    // a hub killed mid-call leaves it behind (synchronous=NORMAL: a power cut may still lose it).
    return this.#db.transaction(() => {
      const id = Number(
        this.#stmt('INSERT INTO audit_log (at, user, node, method, path) VALUES (?, ?, ?, ?, ?)').run(intent.startedAt, intent.user, intent.node, intent.method, intent.path).lastInsertRowid,
      );
      this.auditChain.append('intent', id, { at: intent.startedAt, user: intent.user, node: intent.node, method: intent.method, path: intent.path });
      return id;
    })();
  }

  async finishAudit(id: number, outcome: AuditOutcome): Promise<void> {
    this.#db.transaction(() => {
      if (this.#stmt('UPDATE audit_log SET status = ?, finished_at = ?, bytes = ? WHERE id = ?').run(outcome.status, outcome.finishedAt, outcome.bytes, id).changes === 1) {
        this.auditChain.append('outcome', id, { status: outcome.status, finishedAt: outcome.finishedAt, bytes: outcome.bytes });
      }
    })();
  }

  async queryAudit(query: AuditQuery): Promise<AuditRow[]> {
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (query.user !== undefined) {
      where.push('user = ?');
      args.push(query.user);
    }
    if (query.node !== undefined) {
      where.push('node = ?');
      args.push(query.node);
    }
    if (query.nodes !== undefined) {
      where.push('node IN (SELECT value FROM json_each(?))');
      args.push(JSON.stringify(query.nodes));
    }
    if (query.since !== undefined) {
      where.push('at >= ?');
      args.push(query.since);
    }
    if (query.until !== undefined) {
      where.push('at < ?');
      args.push(query.until);
    }
    if (query.before !== undefined) {
      where.push('id < ?');
      args.push(query.before);
    }
    const sql = `SELECT id, at, user, node, method, path, status, finished_at AS finishedAt, bytes FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return this.#stmt(sql).all(...args, query.limit) as AuditRow[];
  }

  async saveInventory(nodeId: string, section: InventorySection, items: unknown[], at: number): Promise<void> {
    this.#stmt(
      'INSERT INTO node_inventory (node_id, section, items, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (node_id, section) DO UPDATE SET items = excluded.items, updated_at = excluded.updated_at',
    ).run(nodeId, section, JSON.stringify(items), at);
  }

  async loadInventory(nodeId: string): Promise<InventoryRecord[]> {
    const rows = this.#stmt('SELECT section, items, updated_at FROM node_inventory WHERE node_id = ?').all(nodeId) as InventoryRow[];
    return rows.map(inventoryFrom);
  }
}

translateStorageFailures(SqliteStore);
