/** The store, against both engines: migrations, name uniqueness, atomic redemption, durability
 * across reopening, the audit intent, and the job-table rebuild keeping rows. Every test runs on a
 * SQLite file in a temp dir and on a fresh PostgreSQL database (a private server for this file);
 * what only SQLite has (the file itself) is checked on SQLite alone. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { applyMigrations } from '../src/store/sqlite/migrate.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { PgDb, PgError, redactUrl } from '../src/store/postgres/db.ts';
import { applyPostgresMigrations } from '../src/store/postgres/migrate.ts';
import { DockfleetError } from '../src/protocol/errors.ts';
import type { NodeKeyRecord, NodeRecord, Store } from '../src/store/store.ts';
import { type PostgresServer, startPostgres } from './support/postgres.ts';

let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

/** One place a store lives: `open()` opens it (again: a second open is a reopen, as after a restart). */
interface Place {
  open(): Store;
  /** The SQLite file, or null on PostgreSQL. */
  file: string | null;
}
const ENGINES: Array<{ engine: string; place(t: { after(fn: () => unknown): void }): Promise<Place> }> = [
  {
    engine: 'sqlite',
    async place(t) {
      const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const file = join(dir, 'db.sqlite');
      return { open: () => new SqliteStore(file), file };
    },
  },
  {
    engine: 'postgres',
    async place() {
      const url = await server.freshDatabase();
      return { open: () => new PostgresStore(url), file: null };
    },
  },
];

function node(id: string, name: string, state: NodeRecord['state'] = 'active'): NodeRecord {
  return { id, name, state, createdAt: Date.now(), approvedAt: null, revokedAt: null, lastSeen: null, facts: null };
}
function key(keyId: string, nodeId: string): NodeKeyRecord {
  return { keyId, nodeId, publicKey: `pem-${keyId}`, state: 'active', createdAt: Date.now() };
}

for (const { engine, place } of ENGINES) {
  test(`store (${engine}): migrations apply once and report what they applied`, async (t) => {
    const at = await place(t);
    const first = at.open();
    assert.deepEqual(await first.migrate(), [
      '20261122T180000-initial.sql',
      '20261122T190000-client-certs-audit.sql',
      '20261122T200000-accounts-sessions.sql',
      '20261123T090000-audit-intent.sql',
      '20261201T120000-admin-token-principal.sql',
      '20261201T150000-jobs.sql',
      '20261201T150100-stacks.sql',
      '20261201T180000-edge-certificates.sql',
      '20261201T191000-registry-credentials.sql',
      '20261201T194000-access-grants.sql',
      '20261201T195000-alerts.sql',
      '20261201T214000-alert-receiver-tests.sql',
      '20261201T221000-operator-keys.sql',
      '20261201T222000-audit-chain.sql',
      '20261201T223000-job-intents.sql',
      '20261201T234500-volume-backup-jobs.sql',
      '20261202T090000-volume-backup-policies.sql',
      '20261203T100000-host-rebuilds.sql',
      '20261204T090000-volume-backup-repo-keys.sql',
      '20261205T120000-agent-upgrade-rollouts.sql',
    ]);
    await first.close();
    const second = at.open();
    assert.deepEqual(await second.migrate(), []);
    await second.close();
  });

  test(`store (${engine}): a live name is unique, a revoked name can be enrolled again`, async (t) => {
    const store = (await place(t)).open();
    t.after(() => store.close());
    await store.migrate();
    await store.createNode(node('n1', 'alpha'), key('k1'.padEnd(32, '0'), 'n1'));
    await assert.rejects(store.createNode(node('n2', 'alpha'), key('k2'.padEnd(32, '0'), 'n2')), (e: unknown) => e instanceof DockfleetError && e.code === 'name_taken');
    assert.equal(await store.getNodeById('n2'), null, 'nothing half-made');
    await store.setNodeState('n1', 'revoked', Date.now());
    assert.equal((await store.getNodeKey('k1'.padEnd(32, '0')))?.state, 'retired', 'revoking retires the keys');
    await store.createNode(node('n3', 'alpha'), key('k3'.padEnd(32, '0'), 'n3'));
    const listed = await store.listNodes();
    assert.deepEqual(
      listed.map((n) => [n.name, n.id]),
      [['alpha', 'n3']],
    );
  });

  test(`store (${engine}): redeeming a code is all or nothing`, async (t) => {
    const store = (await place(t)).open();
    t.after(() => store.close());
    await store.migrate();
    const now = Date.now();
    await store.createNode(node('n0', 'taken'), key('a'.repeat(32), 'n0'));
    await store.insertCode({ secretHash: 'h1', kind: 'single', nodeName: 'taken', createdAt: now, expiresAt: now + 60_000, usedAt: null });
    // The name is taken: the redemption fails and the code stays unused.
    await assert.rejects(store.redeemCode('h1', now, node('n1', 'taken'), key('b'.repeat(32), 'n1')), /already exists/);
    assert.equal((await store.getCode('h1'))?.usedAt, null);
    assert.equal(await store.getNodeKey('b'.repeat(32)), null);
    await store.insertCode({ secretHash: 'h2', kind: 'single', nodeName: 'fresh', createdAt: now, expiresAt: now + 60_000, usedAt: null });
    await store.redeemCode('h2', now, node('n2', 'fresh'), key('c'.repeat(32), 'n2'));
    await assert.rejects(store.redeemCode('h2', now, node('n3', 'fresh2'), key('d'.repeat(32), 'n3')), (e: unknown) => e instanceof DockfleetError && e.code === 'code_used');
    assert.equal(await store.getNodeById('n3'), null);
  });

  test(`store (${engine}): inventory and node facts survive reopening the store`, async (t) => {
    const at = await place(t);
    const a = at.open();
    await a.migrate();
    await a.createNode(node('n1', 'alpha'), key('e'.repeat(32), 'n1'));
    await a.saveInventory('n1', 'containers', [{ Id: 'c1', State: 'running' }], 42);
    await a.saveInventory('n1', 'containers', [{ Id: 'c2', State: 'exited' }], 43);
    await a.touchNodes([{ id: 'n1', lastSeen: 1234 }]);
    await a.close();
    const b = at.open();
    await b.migrate();
    assert.deepEqual(await b.loadInventory('n1'), [{ section: 'containers', items: [{ Id: 'c2', State: 'exited' }], updatedAt: 43 }]);
    assert.equal((await b.getNodeById('n1'))?.lastSeen, 1234);
    await b.close();
    // SQLite only: the data is in the one file the store was given.
    if (at.file) assert.ok((await readFile(at.file)).length > 0);
  });

  test(`store (${engine}): an audit intent is a row before its outcome; old rows keep their time as both`, async (t) => {
    const at = await place(t);
    const a = at.open();
    await a.migrate();
    await a.appendAudit({ at: 100, user: 'u', node: null, method: 'POST', path: '/api/v1/session', status: 401 });
    const id = await a.beginAudit({ startedAt: 200, user: 'u', node: 'n', method: 'PUT', path: '/containers/x/archive' });
    await a.close();
    // Reopened as after a crash: the intent is there, with no outcome.
    const b = at.open();
    await b.migrate();
    const [open, done] = await b.queryAudit({ limit: 10 });
    assert.deepEqual(open, { id, at: 200, user: 'u', node: 'n', method: 'PUT', path: '/containers/x/archive', status: null, finishedAt: null, bytes: null });
    assert.deepEqual([done!.at, done!.status, done!.finishedAt], [100, 401, 100]);
    await b.finishAudit(id, { status: 200, finishedAt: 250, bytes: 7 });
    const [finished] = await b.queryAudit({ limit: 1, since: 150 });
    assert.deepEqual([finished!.status, finished!.finishedAt, finished!.bytes], [200, 250, 7]);
    assert.deepEqual(
      (await b.queryAudit({ limit: 10, nodes: ['n'], user: 'u' })).map((r) => r.id),
      [id],
      'node list and user filters',
    );
    assert.equal((await b.auditChain.verify()).ok, true, 'each write chained in its transaction');
    await b.close();
  });

  test(`store (${engine}): the first password user is made once, and sessions end all but one`, async (t) => {
    const at = await place(t);
    // Four stores (four replicas on PostgreSQL), each already connected, race to set up the hub.
    const stores = [at.open(), at.open(), at.open(), at.open()];
    t.after(() => Promise.all(stores.map((s) => s.close())));
    await stores[0]!.migrate();
    for (const s of stores) assert.equal(await s.hasPasswordUser(), false);
    const user = (id: string) => ({ id, name: id, role: 'admin' as const, createdAt: 1, disabledAt: null });
    const won = await Promise.all(stores.map((s, i) => s.createFirstPasswordUser(user(`u${i}`), `h${i}`)));
    assert.equal(won.filter(Boolean).length, 1, `exactly one wins: ${won}`);
    const [a, b] = stores as [Store, Store];
    const owner = `u${won.indexOf(true)}`;
    await assert.rejects(a.insertUser(user(owner)), (e: unknown) => e instanceof DockfleetError && e.code === 'name_taken');
    for (const s of ['s1', 's2', 's3']) await a.insertSession({ idHash: s, userId: owner, createdAt: 1, expiresAt: 2 });
    assert.equal(await a.deleteSessionsOfUser(owner, 's2'), 2);
    assert.equal((await b.getSession('s2'))?.userId, owner);
    assert.equal(await a.deleteSessionsOfUser(owner), 1);
  });
}

test('store (postgres): errors name the operation and never the password', async () => {
  const url = await server.freshDatabase();
  const wrong = new PostgresStore(url.replace(server.password, 'not-the-password'));
  const err = await wrong.migrate().catch((e: unknown) => e as Error);
  await wrong.close();
  assert.ok(err instanceof Error);
  assert.match(err.message, /^postgres .* failed: password authentication failed/);
  assert.ok(!err.message.includes(server.password));
  const store = new PostgresStore(url);
  assert.ok(!store.where.includes(server.password) && store.where.includes('***'));
  await store.close();
});

test('store (postgres): BIGINT reads as a number and refuses one past 2^53; a transaction that throws leaves nothing', async () => {
  const db = new PgDb(await server.freshDatabase());
  try {
    assert.equal((await db.query<{ n: number }>('SELECT 9007199254740991::bigint AS n')).rows[0]!.n, Number.MAX_SAFE_INTEGER);
    await assert.rejects(db.query('SELECT 9007199254740993::bigint AS n'), /past Number.MAX_SAFE_INTEGER/);
    await db.query('CREATE TABLE t (id BIGINT PRIMARY KEY)');
    await assert.rejects(
      db.tx(async (q) => {
        await q.query('INSERT INTO t VALUES (1)');
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.equal((await db.query('SELECT 1 FROM t')).rowCount, 0, 'rolled back');
    const dup = await db
      .tx(async (q) => {
        await q.query('INSERT INTO t VALUES (1)');
        return q.query('INSERT INTO t VALUES (1)').catch((e: unknown) => e);
      })
      .catch((e: unknown) => e);
    assert.ok(dup instanceof PgError && dup.sqlState === '23505' && dup.constraint === 't_pkey', 'SQLSTATE and constraint kept');
    assert.match(dup.message, /^postgres INSERT t failed: duplicate key/);
  } finally {
    await db.close();
  }
  assert.equal(redactUrl('postgres://u:s3cret@h:5432/d?password=s3cret'), 'postgres://u:***@h:5432/d?password=***');
});

// The job-intents rebuild must keep rows on both engines; it runs the migrations before it, puts
// a job in with raw SQL (the store's own methods speak the newest schema), then the rest.
const EARLY = fileURLToPath(new URL('../src/store/sqlite/migrations/', import.meta.url));
const REST = [
  '20261201T223000-job-intents.sql',
  '20261201T234500-volume-backup-jobs.sql',
  '20261202T090000-volume-backup-policies.sql',
  '20261203T100000-host-rebuilds.sql',
  '20261204T090000-volume-backup-repo-keys.sql',
  '20261205T120000-agent-upgrade-rollouts.sql',
];
async function migrationsBeforeJobIntents(t: { after(fn: () => unknown): void }): Promise<{ dir: string; before: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const before = join(dir, 'before');
  await mkdir(before);
  for (const f of readdirSync(EARLY).filter((f) => f < '20261201T223000')) await copyFile(join(EARLY, f), join(before, f));
  return { dir, before: `${before}/` };
}
const OLD_JOB = `INSERT INTO jobs (id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at, expires_at)
  VALUES ('job_old', 'deploy', 'n1', 's', 1, 'k1', 'succeeded', '{}', 'sealed', 'me', 1, 2)`;
const NEW_JOB = `INSERT INTO jobs (id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at, expires_at, held, sign_by)
  VALUES ('job_new', 'deploy', 'n1', 's', 2, 'k2', 'awaiting-signature', '{}', 'sealed', 'me', 3, 4, 1, 5)`;

test('store (sqlite): the job-intents migration keeps every job with its steps and log lines, and they still cascade with their job', async (t) => {
  const { dir, before } = await migrationsBeforeJobIntents(t);
  const db = new Database(join(dir, 'db.sqlite'));
  t.after(() => db.close());
  db.pragma('foreign_keys = ON');
  applyMigrations(db, before);
  db.prepare(OLD_JOB).run();
  db.prepare("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_old', 'pull', 1, 'succeeded')").run();
  db.prepare("INSERT INTO job_logs (job_id, seq, at, line) VALUES ('job_old', 1, 1, 'pulled')").run();
  assert.deepEqual(applyMigrations(db, EARLY), REST);
  const job = db.prepare("SELECT state, intent, held, sign_by FROM jobs WHERE id = 'job_old'").get();
  assert.deepEqual({ ...(job as object) }, { state: 'succeeded', intent: null, held: 0, sign_by: null });
  assert.equal((db.prepare("SELECT COUNT(*) AS n FROM job_steps WHERE job_id = 'job_old'").get() as { n: number }).n, 1);
  assert.equal((db.prepare("SELECT COUNT(*) AS n FROM job_logs WHERE job_id = 'job_old'").get() as { n: number }).n, 1);
  db.prepare(NEW_JOB).run();
  assert.throws(() => db.prepare("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_gone', 'x', 1, 'running')").run(), /FOREIGN KEY/);
  db.prepare("DELETE FROM jobs WHERE id = 'job_old'").run();
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM job_steps').get() as { n: number }).n, 0, 'steps cascade with their job');
});

test('store (postgres): the job-intents migration keeps every job with its steps and log lines, and they still cascade with their job', async (t) => {
  const { before } = await migrationsBeforeJobIntents(t);
  const db = new PgDb(await server.freshDatabase());
  t.after(() => db.close());
  await applyPostgresMigrations(db, before);
  await db.query(OLD_JOB);
  await db.query("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_old', 'pull', 1, 'succeeded')");
  await db.query("INSERT INTO job_logs (job_id, seq, at, line) VALUES ('job_old', 1, 1, 'pulled')");
  assert.deepEqual(await applyPostgresMigrations(db, EARLY), REST);
  const job = await db.query("SELECT state, intent, held, sign_by, seq FROM jobs WHERE id = 'job_old'");
  assert.deepEqual({ ...job.rows[0] }, { state: 'succeeded', intent: null, held: 0, sign_by: null, seq: 1 });
  assert.equal((await db.query("SELECT 1 FROM job_steps WHERE job_id = 'job_old'")).rowCount, 1);
  assert.equal((await db.query("SELECT 1 FROM job_logs WHERE job_id = 'job_old'")).rowCount, 1);
  await db.query(NEW_JOB);
  assert.equal((await db.query<{ seq: number }>("SELECT seq FROM jobs WHERE id = 'job_new'")).rows[0]!.seq, 2, 'the identity continues after the copied seq');
  await assert.rejects(db.query("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_gone', 'x', 1, 'running')"), /foreign key/);
  await db.query("DELETE FROM jobs WHERE id = 'job_old'");
  assert.equal((await db.query('SELECT 1 FROM job_steps')).rowCount, 0, 'steps cascade with their job');
});
