/** The embedded store: migrations, name uniqueness, atomic redemption, durability. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { applyMigrations } from '../src/store/sqlite/migrate.ts';
import { DockfleetError } from '../src/protocol/errors.ts';
import type { NodeKeyRecord, NodeRecord } from '../src/store/store.ts';

function node(id: string, name: string, state: NodeRecord['state'] = 'active'): NodeRecord {
  return { id, name, state, createdAt: Date.now(), approvedAt: null, revokedAt: null, lastSeen: null, facts: null };
}
function key(keyId: string, nodeId: string): NodeKeyRecord {
  return { keyId, nodeId, publicKey: `pem-${keyId}`, state: 'active', createdAt: Date.now() };
}

test('store: migrations apply once and report what they applied', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'db.sqlite');
  const first = new SqliteStore(file);
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
  const second = new SqliteStore(file);
  assert.deepEqual(await second.migrate(), []);
  await second.close();
});

test('store: a live name is unique, a revoked name can be enrolled again', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  const store = new SqliteStore(join(dir, 'db.sqlite'));
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
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

test('store: redeeming a code is all or nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  const store = new SqliteStore(join(dir, 'db.sqlite'));
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
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

test('store: inventory and node facts survive reopening the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'db.sqlite');
  const a = new SqliteStore(file);
  await a.migrate();
  await a.createNode(node('n1', 'alpha'), key('e'.repeat(32), 'n1'));
  await a.saveInventory('n1', 'containers', [{ Id: 'c1', State: 'running' }], 42);
  await a.saveInventory('n1', 'containers', [{ Id: 'c2', State: 'exited' }], 43);
  await a.touchNodes([{ id: 'n1', lastSeen: 1234 }]);
  await a.close();
  const b = new SqliteStore(file);
  await b.migrate();
  assert.deepEqual(await b.loadInventory('n1'), [{ section: 'containers', items: [{ Id: 'c2', State: 'exited' }], updatedAt: 43 }]);
  assert.equal((await b.getNodeById('n1'))?.lastSeen, 1234);
  await b.close();
  const bytes = await readFile(file);
  assert.ok(bytes.length > 0);
});

test('store: an audit intent is a row before its outcome; old rows keep their time as both', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'db.sqlite');
  const a = new SqliteStore(file);
  await a.migrate();
  await a.appendAudit({ at: 100, user: 'u', node: null, method: 'POST', path: '/api/v1/session', status: 401 });
  const id = await a.beginAudit({ startedAt: 200, user: 'u', node: 'n', method: 'PUT', path: '/containers/x/archive' });
  await a.close();
  // Reopened as after a crash: the intent is there, with no outcome.
  const b = new SqliteStore(file);
  await b.migrate();
  const [open, done] = await b.queryAudit({ limit: 10 });
  assert.deepEqual(open, { id, at: 200, user: 'u', node: 'n', method: 'PUT', path: '/containers/x/archive', status: null, finishedAt: null, bytes: null });
  assert.deepEqual([done!.at, done!.status, done!.finishedAt], [100, 401, 100]);
  await b.finishAudit(id, { status: 200, finishedAt: 250, bytes: 7 });
  const [finished] = await b.queryAudit({ limit: 1, since: 150 });
  assert.deepEqual([finished!.status, finished!.finishedAt, finished!.bytes], [200, 250, 7]);
  await b.close();
});

test('store: the job-intents migration keeps every job with its steps and log lines, and they still cascade with their job', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const all = fileURLToPath(new URL('../src/store/sqlite/migrations/', import.meta.url));
  const before = join(dir, 'before');
  await mkdir(before);
  for (const f of readdirSync(all).filter((f) => f < '20261201T223000')) await copyFile(join(all, f), join(before, f));
  const db = new Database(join(dir, 'db.sqlite'));
  t.after(() => db.close());
  db.pragma('foreign_keys = ON');
  applyMigrations(db, `${before}/`);
  db.prepare(`INSERT INTO jobs (id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at, expires_at)
    VALUES ('job_old', 'deploy', 'n1', 's', 1, 'k1', 'succeeded', '{}', 'sealed', 'me', 1, 2)`).run();
  db.prepare("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_old', 'pull', 1, 'succeeded')").run();
  db.prepare("INSERT INTO job_logs (job_id, seq, at, line) VALUES ('job_old', 1, 1, 'pulled')").run();
  assert.deepEqual(applyMigrations(db, all), [
    '20261201T223000-job-intents.sql',
    '20261201T234500-volume-backup-jobs.sql',
    '20261202T090000-volume-backup-policies.sql',
    '20261203T100000-host-rebuilds.sql',
    '20261204T090000-volume-backup-repo-keys.sql',
    '20261205T120000-agent-upgrade-rollouts.sql',
  ]);
  const job = db.prepare("SELECT state, intent, held, sign_by FROM jobs WHERE id = 'job_old'").get();
  assert.deepEqual({ ...(job as object) }, { state: 'succeeded', intent: null, held: 0, sign_by: null });
  assert.equal((db.prepare("SELECT COUNT(*) AS n FROM job_steps WHERE job_id = 'job_old'").get() as { n: number }).n, 1);
  assert.equal((db.prepare("SELECT COUNT(*) AS n FROM job_logs WHERE job_id = 'job_old'").get() as { n: number }).n, 1);
  db.prepare(`INSERT INTO jobs (id, kind, node, stack, revision, idempotency_key, state, request, secrets, created_by, created_at, expires_at, held, sign_by)
    VALUES ('job_new', 'deploy', 'n1', 's', 2, 'k2', 'awaiting-signature', '{}', 'sealed', 'me', 3, 4, 1, 5)`).run();
  assert.throws(() => db.prepare("INSERT INTO job_steps (job_id, name, started_at, state) VALUES ('job_gone', 'x', 1, 'running')").run(), /FOREIGN KEY/);
  db.prepare("DELETE FROM jobs WHERE id = 'job_old'").run();
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM job_steps').get() as { n: number }).n, 0, 'steps cascade with their job');
});
