/** The shared store: PostgreSQL through one pg.Pool, so several hub replicas can use one database.
 * The same Store as sqlite-store.ts, method for method; where SQLite relied on being the only
 * writer (a transaction that reads, then writes), this one takes a lock or folds the read into
 * the write, since another replica may run the same method at the same moment. */
import { DockfleetError } from '../../protocol/errors.ts';
import type { InventorySection } from '../../protocol/inventory.ts';
import { AUDIT_CHAIN_MIGRATION } from '../../hub/audit-chain/sqlite-audit-chain.ts';
import { PostgresAuditChain } from '../../hub/audit-chain/postgres-audit-chain.ts';
import { PostgresOperatorKeyStore } from '../../hub/operator-keys/postgres-operator-key-store.ts';
import type { OperatorKeyStore } from '../../hub/operator-keys/operator-key-store.ts';
import { PostgresRebuildStore } from '../../hub/rebuild/postgres-rebuild-store.ts';
import { PostgresRegistryStore } from '../../hub/registry-auth/postgres-registry-store.ts';
import type { RegistryStore } from '../../hub/registry-auth/registry-store.ts';
import { PostgresAgentUpgradeStore } from '../../hub/releases/postgres-upgrade-store.ts';
import { PostgresVolumeBackupStore } from '../../hub/volume-backups/postgres-volume-backup-store.ts';
import type { AccessStore } from '../access-store.ts';
import type { AlertStore } from '../alert-store.ts';
import type { CertStore } from '../cert-store.ts';
import type { JobStore } from '../job-store.ts';
import type { StackStore } from '../stack-store.ts';
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
import { isUniqueViolation, PgDb, PgError, type Queryable } from './db.ts';
import { applyPostgresMigrations } from './migrate.ts';
import { PostgresAccessStore } from './postgres-access-store.ts';
import { PostgresAlertStore } from './postgres-alert-store.ts';
import { PostgresCertStore } from './postgres-cert-store.ts';
import { PostgresJobStore } from './postgres-job-store.ts';
import { PostgresStackStore } from './postgres-stack-store.ts';

/** pg_advisory_xact_lock key that makes "create the first password user" one at a time ("1stu"). */
const FIRST_USER_LOCK = 0x31737475;

export class PostgresStore implements Store {
  readonly #db: PgDb;
  readonly jobs: JobStore;
  readonly stacks: StackStore;
  readonly certs: CertStore;
  readonly alerts: AlertStore;
  readonly access: AccessStore;
  readonly registries: RegistryStore;
  readonly operatorKeys: OperatorKeyStore;
  readonly auditChain: PostgresAuditChain;
  readonly volumeBackups: PostgresVolumeBackupStore;
  readonly rebuilds: PostgresRebuildStore;
  readonly agentUpgrades: PostgresAgentUpgradeStore;

  /** URL: postgres://user:password@host:port/database (the password is never logged or shown). */
  constructor(url: string) {
    this.#db = new PgDb(url);
    this.jobs = new PostgresJobStore(this.#db);
    this.stacks = new PostgresStackStore(this.#db);
    this.certs = new PostgresCertStore(this.#db);
    this.alerts = new PostgresAlertStore(this.#db);
    this.access = new PostgresAccessStore(this.#db);
    this.registries = new PostgresRegistryStore(this.#db);
    this.operatorKeys = new PostgresOperatorKeyStore(this.#db);
    this.auditChain = new PostgresAuditChain(this.#db);
    this.volumeBackups = new PostgresVolumeBackupStore(this.#db);
    this.rebuilds = new PostgresRebuildStore(this.#db);
    this.agentUpgrades = new PostgresAgentUpgradeStore(this.#db);
  }

  /** Where this store is, password hidden (for logs). */
  get where(): string {
    return this.#db.where;
  }

  async migrate(): Promise<string[]> {
    const applied = await applyPostgresMigrations(this.#db);
    // Rows from before the audit chain are chained once, as they are when it is created.
    if (applied.includes(AUDIT_CHAIN_MIGRATION)) await this.auditChain.seedExisting();
    return applied;
  }

  async close(): Promise<void> {
    await this.#db.close();
  }

  async listNodes(): Promise<NodeRecord[]> {
    // Ordered so that, per name, a live record comes last and wins; a name with only revoked
    // records shows its newest one (as revoked) until the name is enrolled again. Names sort by
    // byte, as SQLite sorts them, whatever the database's collation.
    const { rows } = await this.#db.query<NodeRow>(`SELECT * FROM nodes ORDER BY name COLLATE "C", (state <> 'revoked'), created_at`);
    const byName = new Map<string, NodeRecord>();
    for (const row of rows) byName.set(row.name, nodeFrom(row));
    return [...byName.values()];
  }

  async getNodeByName(name: string): Promise<NodeRecord | null> {
    const { rows } = await this.#db.query<NodeRow>("SELECT * FROM nodes WHERE name = $1 ORDER BY (state = 'revoked'), created_at DESC LIMIT 1", [name]);
    return rows[0] ? nodeFrom(rows[0]) : null;
  }

  async getNodeById(id: string): Promise<NodeRecord | null> {
    const { rows } = await this.#db.query<NodeRow>('SELECT * FROM nodes WHERE id = $1', [id]);
    return rows[0] ? nodeFrom(rows[0]) : null;
  }

  async #insertNode(q: Queryable, node: NodeRecord, key: NodeKeyRecord): Promise<void> {
    try {
      await q.query('INSERT INTO nodes (id, name, state, created_at, approved_at, revoked_at, last_seen, facts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', nodeValues(node));
    } catch (err) {
      if (isUniqueViolation(err, 'nodes_live_name')) throw new DockfleetError('name_taken', `a node named ${node.name} already exists`);
      throw err;
    }
    await q.query('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES ($1, $2, $3, $4, $5)', [key.keyId, key.nodeId, key.publicKey, key.state, key.createdAt]);
  }

  async createNode(node: NodeRecord, key: NodeKeyRecord): Promise<void> {
    await this.#db.tx((q) => this.#insertNode(q, node, key));
  }

  async setNodeState(id: string, state: NodeState, at: number): Promise<void> {
    const column = state === 'active' ? 'approved_at' : state === 'revoked' ? 'revoked_at' : null;
    await this.#db.tx(async (q) => {
      if (column) await q.query(`UPDATE nodes SET state = $1, ${column} = $2 WHERE id = $3`, [state, at, id]);
      else await q.query('UPDATE nodes SET state = $1 WHERE id = $2', [state, id]);
      if (state === 'revoked') {
        await q.query("UPDATE node_keys SET state = 'retired', retired_at = $1 WHERE node_id = $2 AND state = 'active'", [at, id]);
      }
    });
  }

  async touchNodes(seen: ReadonlyArray<{ id: string; lastSeen: number }>): Promise<void> {
    if (seen.length === 0) return;
    // One statement for the whole batch: one round trip however many agents reported.
    await this.#db.query('UPDATE nodes SET last_seen = v.last_seen FROM unnest($1::text[], $2::bigint[]) AS v (id, last_seen) WHERE nodes.id = v.id', [
      seen.map((s) => s.id),
      seen.map((s) => s.lastSeen),
    ]);
  }

  async setNodeFacts(id: string, facts: NodeRecord['facts']): Promise<void> {
    await this.#db.query('UPDATE nodes SET facts = $1 WHERE id = $2', [factsValue(facts), id]);
  }

  async getNodeKey(keyId: string): Promise<NodeKeyRecord | null> {
    const { rows } = await this.#db.query<{ key_id: string; node_id: string; public_key: string; state: 'active' | 'retired'; created_at: number }>(
      'SELECT key_id, node_id, public_key, state, created_at FROM node_keys WHERE key_id = $1',
      [keyId],
    );
    const row = rows[0];
    return row ? { keyId: row.key_id, nodeId: row.node_id, publicKey: row.public_key, state: row.state, createdAt: row.created_at } : null;
  }

  async replaceNodeKey(nodeId: string, key: NodeKeyRecord, at: number): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query("UPDATE node_keys SET state = 'retired', retired_at = $1 WHERE node_id = $2 AND state = 'active'", [at, nodeId]);
      await q.query('INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES ($1, $2, $3, $4, $5)', [key.keyId, nodeId, key.publicKey, 'active', key.createdAt]);
    });
  }

  async insertCode(code: CodeRecord): Promise<void> {
    await this.#db.query('INSERT INTO enrollment_codes (secret_hash, kind, node_name, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)', codeValues(code));
  }

  async getCode(secretHash: string): Promise<CodeRecord | null> {
    const { rows } = await this.#db.query<CodeRow>('SELECT * FROM enrollment_codes WHERE secret_hash = $1', [secretHash]);
    const row = rows[0];
    return row ? codeFrom(row) : null;
  }

  async markCodeUsed(secretHash: string, at: number): Promise<boolean> {
    // The row lock the UPDATE takes makes a second replica's UPDATE wait, then find used_at set.
    const { rowCount } = await this.#db.query('UPDATE enrollment_codes SET used_at = $1 WHERE secret_hash = $2 AND used_at IS NULL', [at, secretHash]);
    return rowCount === 1;
  }

  async redeemCode(secretHash: string, at: number, node: NodeRecord, key: NodeKeyRecord): Promise<void> {
    await this.#db.tx(async (q) => {
      const { rowCount } = await q.query('UPDATE enrollment_codes SET used_at = $1 WHERE secret_hash = $2 AND used_at IS NULL', [at, secretHash]);
      if (rowCount !== 1) throw new DockfleetError('code_used', 'enrollment code was already used');
      await this.#insertNode(q, node, key);
    });
  }

  async insertToken(token: TokenRecord): Promise<void> {
    await this.#db.query('INSERT INTO api_tokens (token_hash, name, user_id, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)', [
      token.tokenHash,
      token.name,
      token.userId,
      token.createdAt,
      token.revokedAt,
    ]);
  }

  async getToken(tokenHash: string): Promise<TokenRecord | null> {
    const { rows } = await this.#db.query<TokenRow>('SELECT * FROM api_tokens WHERE token_hash = $1', [tokenHash]);
    const row = rows[0];
    return row ? tokenFrom(row) : null;
  }

  async insertUser(user: UserRecord): Promise<void> {
    try {
      await this.#db.query('INSERT INTO users (id, name, role, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5)', [user.id, user.name, user.role, user.createdAt, user.disabledAt]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new DockfleetError('name_taken', `a user named ${user.name} already exists`);
      throw err;
    }
  }

  async getUser(id: string): Promise<UserRecord | null> {
    return userFrom((await this.#db.query<UserRow>('SELECT * FROM users WHERE id = $1', [id])).rows[0]);
  }

  async getUserByName(name: string): Promise<UserRecord | null> {
    return userFrom((await this.#db.query<UserRow>('SELECT * FROM users WHERE name = $1', [name])).rows[0]);
  }

  async getPasswordHash(userId: string): Promise<string | null> {
    const { rows } = await this.#db.query<{ password_hash: string | null }>('SELECT password_hash FROM users WHERE id = $1', [userId]);
    return rows[0]?.password_hash ?? null;
  }

  async setPasswordHash(userId: string, hash: string): Promise<void> {
    await this.#db.query('UPDATE users SET password_hash = $1 WHERE id = $2', [hash, userId]);
  }

  async hasPasswordUser(): Promise<boolean> {
    return (await this.#db.query('SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1')).rowCount > 0;
  }

  async createFirstPasswordUser(user: UserRecord, passwordHash: string): Promise<boolean> {
    // SQLite's IMMEDIATE transaction made check-then-insert one step; here two replicas could
    // both see no password user, so the check and the insert hold one advisory lock.
    return this.#db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1)', [FIRST_USER_LOCK]);
      if ((await q.query('SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1')).rowCount > 0) return false;
      await q.query('INSERT INTO users (id, name, role, created_at, disabled_at, password_hash) VALUES ($1, $2, $3, $4, $5, $6)', [
        user.id,
        user.name,
        user.role,
        user.createdAt,
        user.disabledAt,
        passwordHash,
      ]);
      return true;
    });
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    const { rows } = await this.#db.query<TokenRow>('SELECT * FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at', [userId]);
    return rows.map(tokenFrom);
  }

  async revokeToken(tokenHash: string, userId: string, at: number): Promise<boolean> {
    const { rowCount } = await this.#db.query('UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND user_id = $3 AND revoked_at IS NULL', [at, tokenHash, userId]);
    return rowCount === 1;
  }

  async insertSession(session: SessionRecord): Promise<void> {
    await this.#db.query('INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)', [session.idHash, session.userId, session.createdAt, session.expiresAt]);
  }

  async getSession(idHash: string): Promise<SessionRecord | null> {
    const { rows } = await this.#db.query<SessionRow>('SELECT * FROM sessions WHERE id_hash = $1', [idHash]);
    const row = rows[0];
    return row ? sessionFrom(row) : null;
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.#db.query('DELETE FROM sessions WHERE id_hash = $1', [idHash]);
  }

  async deleteSessionsOfUser(userId: string, exceptIdHash?: string): Promise<number> {
    return (await this.#db.query('DELETE FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2', [userId, exceptIdHash ?? null])).rowCount;
  }

  async insertClientCert(cert: ClientCertRecord): Promise<void> {
    await this.#db.query('INSERT INTO client_certs (serial, user_id, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5)', [
      cert.serial,
      cert.userId,
      cert.createdAt,
      cert.expiresAt,
      cert.revokedAt,
    ]);
  }

  async getClientCert(serial: string): Promise<ClientCertRecord | null> {
    const { rows } = await this.#db.query<{ serial: string; user_id: string; created_at: number; expires_at: number; revoked_at: number | null }>('SELECT * FROM client_certs WHERE serial = $1', [
      serial,
    ]);
    const row = rows[0];
    return row ? { serial: row.serial, userId: row.user_id, createdAt: row.created_at, expiresAt: row.expires_at, revokedAt: row.revoked_at } : null;
  }

  async revokeClientCert(serial: string, at: number): Promise<boolean> {
    return (await this.#db.query('UPDATE client_certs SET revoked_at = $1 WHERE serial = $2 AND revoked_at IS NULL', [at, serial])).rowCount === 1;
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    // Each audit write and its chain entry (src/hub/audit-chain/) are one transaction.
    await this.#db.tx(async (q) => {
      const { rows } = await q.query<{ id: number }>('INSERT INTO audit_log (at, "user", node, method, path, status, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id', [
        entry.at,
        entry.user,
        entry.node,
        entry.method,
        entry.path,
        entry.status,
        entry.at,
      ]);
      await this.auditChain.append(q, 'record', rows[0]!.id, {
        at: entry.at,
        user: entry.user,
        node: entry.node,
        method: entry.method,
        path: entry.path,
        status: entry.status,
        finishedAt: entry.at,
        bytes: null,
      });
    });
  }

  async beginAudit(intent: AuditIntent): Promise<number> {
    // Committed on return, so a hub killed mid-call leaves the intent behind.
    return this.#db.tx(async (q) => {
      const { rows } = await q.query<{ id: number }>('INSERT INTO audit_log (at, "user", node, method, path) VALUES ($1, $2, $3, $4, $5) RETURNING id', [
        intent.startedAt,
        intent.user,
        intent.node,
        intent.method,
        intent.path,
      ]);
      const id = rows[0]!.id;
      await this.auditChain.append(q, 'intent', id, { at: intent.startedAt, user: intent.user, node: intent.node, method: intent.method, path: intent.path });
      return id;
    });
  }

  async finishAudit(id: number, outcome: AuditOutcome): Promise<void> {
    await this.#db.tx(async (q) => {
      const { rowCount } = await q.query('UPDATE audit_log SET status = $1, finished_at = $2, bytes = $3 WHERE id = $4', [outcome.status, outcome.finishedAt, outcome.bytes, id]);
      if (rowCount === 1) await this.auditChain.append(q, 'outcome', id, { status: outcome.status, finishedAt: outcome.finishedAt, bytes: outcome.bytes });
    });
  }

  async queryAudit(query: AuditQuery): Promise<AuditRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const arg = (value: unknown): string => {
      args.push(value);
      return `$${args.length}`;
    };
    if (query.user !== undefined) where.push(`"user" = ${arg(query.user)}`);
    if (query.node !== undefined) where.push(`node = ${arg(query.node)}`);
    if (query.nodes !== undefined) where.push(`node = ANY(${arg([...query.nodes])}::text[])`);
    if (query.since !== undefined) where.push(`at >= ${arg(query.since)}`);
    if (query.until !== undefined) where.push(`at < ${arg(query.until)}`);
    if (query.before !== undefined) where.push(`id < ${arg(query.before)}`);
    const sql = `SELECT id, at, "user", node, method, path, status, finished_at AS "finishedAt", bytes FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${arg(query.limit)}`;
    return (await this.#db.query<AuditRow>(sql, args)).rows;
  }

  async saveInventory(nodeId: string, section: InventorySection, items: unknown[], at: number): Promise<void> {
    await this.#db.query(
      'INSERT INTO node_inventory (node_id, section, items, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (node_id, section) DO UPDATE SET items = excluded.items, updated_at = excluded.updated_at',
      [nodeId, section, JSON.stringify(items), at],
    );
  }

  async loadInventory(nodeId: string): Promise<InventoryRecord[]> {
    const { rows } = await this.#db.query<InventoryRow>('SELECT section, items, updated_at FROM node_inventory WHERE node_id = $1', [nodeId]);
    return rows.map(inventoryFrom);
  }
}

/** PostgreSQL's SQLSTATEs for a disk that is full, failing or a server that is read-only. */
const STORAGE_FAILURES = ['53100', '58030', '25006'];

/** As translateStorageFailures does for SQLite: a write the storage refuses is `storage_full`. */
function translatePgStorageFailures(cls: { prototype: object }): void {
  const proto = cls.prototype as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    const method = descriptor?.value;
    if (name === 'constructor' || typeof method !== 'function') continue;
    proto[name] = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } catch (err) {
        if (err instanceof PgError && err.sqlState !== undefined && STORAGE_FAILURES.includes(err.sqlState)) {
          throw new DockfleetError('storage_full', 'the hub cannot write to its storage (disk full, failing or read-only); changes are refused until it can', { cause: err });
        }
        throw err;
      }
    };
  }
}

// The same stores as on SQLite (statement-cache.ts's translateStorageFailures): their writes are the ones people wait on.
for (const cls of [PostgresStore, PostgresJobStore, PostgresStackStore, PostgresCertStore, PostgresAlertStore, PostgresOperatorKeyStore]) translatePgStorageFailures(cls);
