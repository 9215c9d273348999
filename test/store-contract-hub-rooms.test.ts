/** The stores that live in hub rooms (registry-auth, operator-keys, volume-backups, rebuild,
 * releases) on both engines (issue 17, item 1): every method and its edge cases give the same
 * answers on SQLite (the reference) and PostgreSQL; and on PostgreSQL, what two replicas sharing one
 * database could race (a volume's backup status merge, a rebuild retry, policy revisions) comes out
 * as one hub would have left it. The audit chain has its own file (store-contract-audit-chain). */
import assert from 'node:assert/strict';
import { PostgresOperatorKeyStore } from '../src/hub/operator-keys/postgres-operator-key-store.ts';
import { SqliteOperatorKeyStore } from '../src/hub/operator-keys/sqlite-operator-key-store.ts';
import type { RebuildRecord } from '../src/hub/rebuild/rebuild-record.ts';
import { PostgresRebuildStore } from '../src/hub/rebuild/postgres-rebuild-store.ts';
import { SqliteRebuildStore } from '../src/hub/rebuild/rebuild-store.ts';
import { PostgresRegistryStore } from '../src/hub/registry-auth/postgres-registry-store.ts';
import { SqliteRegistryStore } from '../src/hub/registry-auth/sqlite-registry-store.ts';
import { PostgresAgentUpgradeStore } from '../src/hub/releases/postgres-upgrade-store.ts';
import { SqliteAgentUpgradeStore, type StoredRollout } from '../src/hub/releases/upgrade-store.ts';
import { PostgresVolumeBackupStore } from '../src/hub/volume-backups/postgres-volume-backup-store.ts';
import { SqliteVolumeBackupStore } from '../src/hub/volume-backups/volume-backup-store.ts';
import type { BackupOutcome, VerifyOutcome, VolumeBackupPolicy } from '../src/protocol/volume-backup.ts';
import { pgRaw, type Raw, sqliteRaw } from './support/raw-sql.ts';
import { storeContract } from './support/store-contract.ts';

/** A store with plain SQL beside it, to set up the rows it refers to and to look behind it. */
type With<S> = { store: S; raw: Raw };

const T0 = Date.UTC(2026, 11, 5);

// ── registry credentials ─────────────────────────────────────────────────────────────────────
const registries = storeContract<With<SqliteRegistryStore | PostgresRegistryStore>>('registry store', {
  sqlite: (db) => ({ store: new SqliteRegistryStore(db), raw: sqliteRaw(db) }),
  postgres: (db) => ({ store: new PostgresRegistryStore(db), raw: pgRaw(db) }),
});
const credential = (id: string, server: string) => ({ id, server, username: `u-${id}`, sealedSecret: `sealed:${id}`, createdBy: 'admin', createdAt: T0 + id.length });

registries.test('one credential per server, listed by server in byte order, deleted once', async ({ store }) => {
  assert.equal(await store.insertRegistry(credential('r1', 'registry.example.com')), true);
  assert.equal(await store.insertRegistry(credential('r2', '127.0.0.1:5000')), true);
  assert.equal(await store.insertRegistry(credential('r3', 'Docker.io')), true);
  assert.equal(await store.insertRegistry(credential('r4', 'registry.example.com')), false, 'a second credential for a server is refused');
  assert.deepEqual(await store.getRegistry('r1'), credential('r1', 'registry.example.com'));
  assert.equal(await store.getRegistry('r4'), null);
  assert.deepEqual(
    (await store.listRegistries()).map((r) => r.server),
    ['127.0.0.1:5000', 'Docker.io', 'registry.example.com'],
  );
  await assert.rejects(store.insertRegistry(credential('r1', 'other.example.com')), 'a reused id is an error, not a quiet false');
  assert.equal(await store.deleteRegistry('r1'), true);
  assert.equal(await store.deleteRegistry('r1'), false);
  assert.equal(await store.insertRegistry(credential('r5', 'registry.example.com')), true, 'the server is free again');
});

registries.postgresTest('listed in byte order even where the column sorts by language (an ICU collation)', async ({ store, db }) => {
  await db.query('ALTER TABLE registry_credentials ALTER COLUMN server TYPE text COLLATE "en-US-x-icu"');
  for (const [id, server] of [
    ['a', 'alpha.example.com'],
    ['b', 'Zeta.example.com'],
    ['c', 'beta.example.com'],
  ]) {
    assert.equal(await store.store.insertRegistry(credential(id!, server!)), true);
  }
  assert.deepEqual(
    (await store.store.listRegistries()).map((r) => r.server),
    ['Zeta.example.com', 'alpha.example.com', 'beta.example.com'],
    'as SQLite lists them',
  );
});

// ── operator keys ────────────────────────────────────────────────────────────────────────────
const operatorKeys = storeContract<With<SqliteOperatorKeyStore | PostgresOperatorKeyStore>>('operator key store', {
  sqlite: (db) => ({ store: new SqliteOperatorKeyStore(db), raw: sqliteRaw(db) }),
  postgres: (db) => ({ store: new PostgresOperatorKeyStore(db), raw: pgRaw(db) }),
});
const opKey = (id: string, userId: string, createdAt: number) => ({ id, userId, publicKey: `ed25519:${id}-pub`, name: `key ${id}`, createdAt, revokedAt: null as number | null });

async function addUser(raw: Raw, id: string, name: string): Promise<void> {
  await raw.run('INSERT INTO users (id, name, role, created_at) VALUES (?, ?, ?, ?)', [id, name, 'operator', T0]);
}

operatorKeys.test('a key is registered once by fingerprint or public key, listed oldest first, revoked once', async ({ store, raw }) => {
  await addUser(raw, 'u1', 'alice');
  await addUser(raw, 'u2', 'bob');
  assert.equal(await store.insertOperatorKey(opKey('k-b', 'u1', T0 + 2)), true);
  assert.equal(await store.insertOperatorKey(opKey('k-a', 'u1', T0 + 2)), true);
  assert.equal(await store.insertOperatorKey(opKey('k-c', 'u2', T0 + 1)), true);
  assert.equal(await store.insertOperatorKey(opKey('k-a', 'u2', T0 + 5)), false, 'same fingerprint');
  assert.equal(await store.insertOperatorKey({ ...opKey('k-z', 'u2', T0 + 5), publicKey: 'ed25519:k-b-pub' }), false, 'same public key');
  assert.deepEqual(await store.getOperatorKey('k-a'), opKey('k-a', 'u1', T0 + 2));
  assert.equal(await store.getOperatorKey('k-z'), null);
  assert.deepEqual(
    (await store.listOperatorKeys('u1')).map((k) => k.id),
    ['k-a', 'k-b'],
  );
  assert.deepEqual(await store.listOperatorKeys('nobody'), []);
  assert.deepEqual(
    (await store.listAllOperatorKeys()).map((k) => [k.id, k.userName]),
    [
      ['k-c', 'bob'],
      ['k-a', 'alice'],
      ['k-b', 'alice'],
    ],
  );
  assert.equal(await store.revokeOperatorKey('k-a', T0 + 9), true);
  assert.equal(await store.revokeOperatorKey('k-a', T0 + 10), false, 'revoked already');
  assert.equal(await store.revokeOperatorKey('k-none', T0 + 10), false);
  assert.equal((await store.getOperatorKey('k-a'))?.revokedAt, T0 + 9);
  assert.equal(await store.insertOperatorKey(opKey('k-a', 'u1', T0 + 20)), false, 'a revoked key cannot come back');
  await assert.rejects(store.insertOperatorKey(opKey('k-x', 'ghost', T0)), 'a key of an unknown user is refused');
});

// ── volume backups ───────────────────────────────────────────────────────────────────────────
const backups = storeContract<With<SqliteVolumeBackupStore | PostgresVolumeBackupStore>>('volume backup store', {
  sqlite: (db) => ({ store: new SqliteVolumeBackupStore(db), raw: sqliteRaw(db) }),
  postgres: (db) => ({ store: new PostgresVolumeBackupStore(db), raw: pgRaw(db) }),
});
const policy = (volume: string, setAt: number): VolumeBackupPolicy =>
  ({ volume, every: 'daily', retention: { daily: 7 }, repository: null, verifyEvery: '7d', setAt }) as unknown as VolumeBackupPolicy;
const backup = (at: number, ok = true): BackupOutcome => ({ at, ok, snapshot: ok ? `s${at}` : null, bytesAdded: ok ? at % 1000 : null, durationMs: 5, error: ok ? null : 'failed' });
const verified = (at: number, ok: boolean): VerifyOutcome => ({ at, ok, snapshot: `s${at}`, files: 3, bytes: 4_000_000_000, durationMs: 7, detail: ok ? 'verified' : 'differs' });

backups.test('policies: each change bumps its node’s revision; listed by node and volume; removed once', async ({ store }) => {
  assert.equal(await store.putPolicy({ node: 'web', volume: 'pgdata', policy: policy('pgdata', T0), setBy: 'alice' }), 1);
  assert.equal(await store.putPolicy({ node: 'web', volume: 'Assets', policy: policy('Assets', T0), setBy: 'alice' }), 2);
  assert.equal(await store.putPolicy({ node: 'db', volume: 'pgdata', policy: policy('pgdata', T0), setBy: 'bob' }), 1, 'revisions are per node');
  assert.equal(await store.putPolicy({ node: 'web', volume: 'pgdata', policy: policy('pgdata', T0 + 5), setBy: 'bob' }), 3, 'a replaced policy bumps too');
  assert.deepEqual(
    (await store.policies()).map((p) => [p.node, p.volume, p.setBy, p.policy.setAt]),
    [
      ['db', 'pgdata', 'bob', T0],
      ['web', 'Assets', 'alice', T0],
      ['web', 'pgdata', 'bob', T0 + 5],
    ],
  );
  assert.deepEqual(await store.policies('web'), [
    { node: 'web', volume: 'Assets', policy: policy('Assets', T0), setBy: 'alice' },
    { node: 'web', volume: 'pgdata', policy: policy('pgdata', T0 + 5), setBy: 'bob' },
  ]);
  assert.deepEqual(await store.policies('none'), []);
  assert.equal(await store.deletePolicy('web', 'Assets'), 4);
  assert.equal(await store.deletePolicy('web', 'Assets'), null, 'nothing removed, no bump');
  assert.equal(await store.putPolicy({ node: 'web', volume: 'x', policy: policy('x', T0), setBy: 'a' }), 5);
});

backups.test('reports: the newer of stored and reported per field; the last good verification is kept', async ({ store }) => {
  assert.equal(await store.status('web', 'pgdata'), null);
  await store.recordReport('web', 'pgdata', backup(T0 + 100), null);
  await store.recordReport('web', 'pgdata', backup(T0 + 50), verified(T0 + 60, true)); // an older backup does not replace the newer
  let s = await store.status('web', 'pgdata');
  assert.deepEqual(s?.lastBackup, backup(T0 + 100));
  assert.deepEqual(s?.lastVerify, verified(T0 + 60, true));
  assert.equal(s?.lastVerifiedOkAt, T0 + 60);
  await store.recordReport('web', 'pgdata', null, verified(T0 + 200, false));
  s = await store.status('web', 'pgdata');
  assert.deepEqual(s?.lastVerify, verified(T0 + 200, false));
  assert.equal(s?.lastVerifiedOkAt, T0 + 60, 'a failed verification keeps when one last succeeded');
  assert.deepEqual(s?.lastBackup, backup(T0 + 100), 'a report without a backup keeps the stored one');
  assert.equal(typeof s?.updatedAt, 'number');
  await store.recordReport('web', 'assets', null, null);
  assert.deepEqual(
    (await store.statuses('web')).map((r) => [r.volume, r.lastBackup?.at ?? null]),
    [
      ['assets', null],
      ['pgdata', T0 + 100],
    ],
  );
  assert.deepEqual(await store.statuses('db'), []);
});

backups.test('repository keys: the first kept wins; policy secrets set, replaced, removed', async ({ store }) => {
  assert.equal(await store.repoKey('web', 'default'), null);
  assert.equal(await store.putRepoKey('web', 'default', 'sealed-1', T0), 'sealed-1');
  assert.equal(await store.putRepoKey('web', 'default', 'sealed-2', T0 + 1), 'sealed-1', 'the first password stays');
  assert.equal(await store.putRepoKey('web', 'hub', 'sealed-3', T0 + 1), 'sealed-3');
  assert.equal(await store.repoKey('web', 'default'), 'sealed-1');
  assert.equal(await store.policySecrets('web', 'pgdata'), null);
  await store.setPolicySecrets('web', 'pgdata', { sealedEnv: 'env-1', names: ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] });
  await store.setPolicySecrets('web', 'pgdata', { sealedEnv: 'env-2', names: ['B2_ACCOUNT_ID'] });
  assert.deepEqual(await store.policySecrets('web', 'pgdata'), { sealedEnv: 'env-2', names: ['B2_ACCOUNT_ID'] });
  await store.setPolicySecrets('web', 'pgdata', null);
  assert.equal(await store.policySecrets('web', 'pgdata'), null);
  await store.setPolicySecrets('web', 'pgdata', null); // removing nothing is fine
});

backups.postgresTest('two replicas reporting one volume at once keep the newest of each', async ({ store, replica }) => {
  const other = replica();
  const stamps = Array.from({ length: 40 }, (_, i) => T0 + ((i * 17) % 40)); // every stamp once, out of order
  await Promise.all(stamps.map((at, i) => (i % 2 ? store : other).store.recordReport('web', 'pgdata', backup(at), verified(at, at % 3 !== 0))));
  const s = await store.store.status('web', 'pgdata');
  assert.equal(s?.lastBackup?.at, T0 + 39);
  assert.equal(s?.lastVerify?.at, T0 + 39);
  assert.equal(s?.lastVerifiedOkAt, T0 + 38, 'the newest good verification (39 is a failure)');
});

backups.postgresTest('two replicas changing one node’s policies at once hand out each revision once', async ({ store, replica }) => {
  const other = replica();
  const revisions = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? store : other).store.putPolicy({ node: 'web', volume: `v${i}`, policy: policy(`v${i}`, T0), setBy: 'a' })));
  assert.deepEqual(
    revisions.sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
});

// ── host rebuilds ────────────────────────────────────────────────────────────────────────────
const rebuilds = storeContract<With<SqliteRebuildStore | PostgresRebuildStore>>('rebuild store', {
  sqlite: (db) => ({ store: new SqliteRebuildStore(db), raw: sqliteRaw(db) }),
  postgres: (db) => ({ store: new PostgresRebuildStore(db), raw: pgRaw(db) }),
});
const code = (secretHash: string) => ({ secretHash, kind: 'single' as const, nodeName: 'web', createdAt: T0, expiresAt: T0 + 3_600_000, usedAt: null });
const rebuild = (id: string, node: string, state: RebuildRecord['state']): RebuildRecord => ({
  id,
  node,
  state,
  startedAt: T0 + 1000,
  finishedAt: null,
  custody: 'escrowed',
  volumes: [{ volume: 'pgdata', repository: null, repositoryLabel: null, escrowed: true, job: null, state: 'pending', snapshot: null, error: null }],
  stacks: [],
  error: state === 'failed' ? 'restore failed' : null,
});

async function addNode(raw: Raw, id: string, name: string, keyId: string): Promise<void> {
  await raw.run("INSERT INTO nodes (id, name, state, created_at) VALUES (?, ?, 'active', ?)", [id, name, T0]);
  await raw.run("INSERT INTO node_keys (key_id, node_id, public_key, state, created_at) VALUES (?, ?, ?, 'active', ?)", [keyId, id, `pem-${keyId}`, T0]);
}

rebuilds.test('escrowed keys: the first per repository is kept; listed newest first', async ({ store }) => {
  const e = (repository: string, createdAt: number, wrappedKey = `w-${repository}`) => ({ node: 'web', repository, wrappedKey, createdAt, jobId: `job-${createdAt}` });
  assert.equal(await store.putEscrow(e('default', T0)), true);
  assert.equal(await store.putEscrow(e('hub', T0 + 5)), true);
  assert.equal(await store.putEscrow(e('default', T0 + 9, 'w-later')), false);
  assert.deepEqual(await store.escrows('web'), [e('hub', T0 + 5), e('default', T0)]);
  assert.deepEqual(await store.escrows('db'), []);
});

rebuilds.test('a replacement code is stored with its enrollment code, all or nothing', async ({ store, raw }) => {
  await store.insertReplaceCode(code('h1'), 'web', 'sealed-recovery');
  await store.insertReplaceCode(code('h2'), 'web', null);
  assert.deepEqual(await store.replaceCode('h1'), { node: 'web', sealedSecrets: 'sealed-recovery' });
  assert.deepEqual(await store.replaceCode('h2'), { node: 'web', sealedSecrets: null });
  assert.equal(await store.replaceCode('h3'), null);
  assert.equal((await raw.rows('SELECT secret_hash FROM enrollment_codes')).length, 2);
  await raw.run('DELETE FROM node_replacement_codes');
  await assert.rejects(store.insertReplaceCode(code('h1'), 'db', null), 'the enrollment code exists already');
  assert.equal(await store.replaceCode('h1'), null, 'no replacement mark was left behind');
});

rebuilds.test('a takeover uses the code, retires the old keys, adds the new one and records the rebuild — once', async ({ store, raw }) => {
  await addNode(raw, 'n1', 'web', 'old-key');
  await store.insertReplaceCode(code('h1'), 'web', null);
  const key = { keyId: 'new-key', nodeId: 'n1', publicKey: 'pem-new', state: 'active' as const, createdAt: T0 + 1000 };
  await store.takeOver('h1', key, { record: rebuild('rb1', 'web', 'restoring'), sealedSecrets: 'sealed' });
  const keys = await raw.rows<{ key_id: string; state: string; retired_at: number | null }>('SELECT key_id, state, retired_at FROM node_keys ORDER BY key_id');
  assert.deepEqual(keys, [
    { key_id: 'new-key', state: 'active', retired_at: null },
    { key_id: 'old-key', state: 'retired', retired_at: T0 + 1000 },
  ]);
  assert.deepEqual(await raw.rows('SELECT used_at FROM enrollment_codes'), [{ used_at: T0 + 1000 }]);
  assert.deepEqual(await store.rebuilds(), [{ record: rebuild('rb1', 'web', 'restoring'), sealedSecrets: 'sealed' }]);
  const again = { ...key, keyId: 'third-key' };
  await assert.rejects(store.takeOver('h1', again, { record: rebuild('rb2', 'web', 'restoring'), sealedSecrets: null }), (err: { code?: string }) => err.code === 'code_used');
  assert.equal((await raw.rows("SELECT key_id FROM node_keys WHERE key_id = 'third-key'")).length, 0);
  assert.equal((await store.rebuilds())[0]?.record.id, 'rb1');
  // A takeover that fails midway (its key exists already) leaves the code unused.
  await store.insertReplaceCode(code('h2'), 'web', null);
  await assert.rejects(store.takeOver('h2', key, { record: rebuild('rb3', 'web', 'restoring'), sealedSecrets: null }));
  assert.deepEqual(await raw.rows("SELECT used_at FROM enrollment_codes WHERE secret_hash = 'h2'"), [{ used_at: null }]);
  assert.deepEqual(
    (await raw.rows<{ state: string }>("SELECT state FROM node_keys WHERE key_id = 'new-key'")).map((r) => r.state),
    ['active'],
  );
});

rebuilds.test('progress is saved with the secrets kept; a retry replaces only the node’s failed rebuild', async ({ store, raw }) => {
  await addNode(raw, 'n1', 'web', 'k1');
  await addNode(raw, 'n2', 'db', 'k2');
  await store.insertReplaceCode(code('h1'), 'web', null);
  await store.insertReplaceCode({ ...code('h2'), nodeName: 'db' }, 'db', null);
  await store.takeOver('h1', { keyId: 'k1b', nodeId: 'n1', publicKey: 'p', state: 'active', createdAt: T0 }, { record: rebuild('rb1', 'web', 'restoring'), sealedSecrets: 's1' });
  await store.takeOver('h2', { keyId: 'k2b', nodeId: 'n2', publicKey: 'p', state: 'active', createdAt: T0 }, { record: rebuild('rb2', 'db', 'restoring'), sealedSecrets: null });
  assert.equal(await store.retryRebuild('rb1', { record: rebuild('rb1b', 'web', 'restoring'), sealedSecrets: null }), false, 'not failed');
  await store.saveRebuild(rebuild('rb1', 'web', 'failed'));
  assert.deepEqual(
    (await store.rebuilds()).map((r) => [r.record.node, r.record.state, r.sealedSecrets]),
    [
      ['db', 'restoring', null],
      ['web', 'failed', 's1'],
    ],
  );
  assert.equal(await store.retryRebuild('rb-other', { record: rebuild('rb1b', 'web', 'restoring'), sealedSecrets: null }), false, 'not that rebuild');
  assert.equal(await store.retryRebuild('rb1', { record: rebuild('rb1b', 'web', 'restoring'), sealedSecrets: 's2' }), true);
  assert.equal(await store.retryRebuild('rb1', { record: rebuild('rb1c', 'web', 'restoring'), sealedSecrets: null }), false, 'replaced already');
  const web = (await store.rebuilds()).find((r) => r.record.node === 'web');
  assert.deepEqual(web, { record: rebuild('rb1b', 'web', 'restoring'), sealedSecrets: 's2' });
  await store.saveRebuild(rebuild('rb-unknown', 'web', 'done')); // no such rebuild: nothing changes
  assert.equal((await store.rebuilds()).find((r) => r.record.node === 'web')?.record.state, 'restoring');
});

rebuilds.postgresTest('two replicas retrying one failed rebuild start one new rebuild', async ({ store, replica, db }) => {
  const other = replica();
  const raw = pgRaw(db);
  await addNode(raw, 'n1', 'web', 'k1');
  await store.store.insertReplaceCode(code('h1'), 'web', null);
  await store.store.takeOver('h1', { keyId: 'k1b', nodeId: 'n1', publicKey: 'p', state: 'active', createdAt: T0 }, { record: rebuild('rb1', 'web', 'failed'), sealedSecrets: null });
  for (let round = 0; round < 5; round++) {
    const previous = round === 0 ? 'rb1' : `retry-${round - 1}-won`;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? store : other).store.retryRebuild(previous, { record: rebuild(`retry-${round}-${i}`, 'web', 'failed'), sealedSecrets: null })),
    );
    assert.equal(results.filter(Boolean).length, 1, `round ${round}: one retry wins`);
    const winner = `retry-${round}-${results.indexOf(true)}`;
    assert.equal((await store.store.rebuilds())[0]?.record.id, winner);
    await raw.run('UPDATE node_rebuilds SET id = ?', [`retry-${round}-won`]);
  }
});

// ── agent upgrade rollouts ───────────────────────────────────────────────────────────────────
const upgrades = storeContract<With<SqliteAgentUpgradeStore | PostgresAgentUpgradeStore>>('agent upgrade store', {
  sqlite: (db) => ({ store: new SqliteAgentUpgradeStore(db), raw: sqliteRaw(db) }),
  postgres: (db) => ({ store: new PostgresAgentUpgradeStore(db), raw: pgRaw(db) }),
});
const iso = (ms: number) => new Date(ms).toISOString();
const rollout = (id: string, createdAt: number, nodes: string[]): StoredRollout => ({
  view: {
    id,
    to: '1.4.0',
    parallel: 2,
    state: 'running',
    createdAt: iso(createdAt),
    finishedAt: null,
    nodes: nodes.map((node, i) => ({ node, wave: Math.floor(i / 2), state: 'waiting', from: null, reason: null, startedAt: null, finishedAt: null })),
  },
  jobIds: nodes.map((n) => `job-${id}-${n}`),
  createdBy: 'alice',
});

upgrades.test('a rollout and its steps come back as stored; steps and the finish are saved', async ({ store }) => {
  const r = rollout('ro1', T0, ['web', 'db', 'cache']);
  await store.insertRollout(r);
  assert.deepEqual(await store.recent(10), [r]);
  const step = { node: 'db', wave: 0, state: 'succeeded' as const, from: '1.3.0', reason: null, startedAt: iso(T0 + 5), finishedAt: iso(T0 + 9) };
  await store.saveStep('ro1', 1, step);
  await store.saveStep('ro1', 2, { ...r.view.nodes[2]!, state: 'skipped', reason: 'offline' });
  await store.finishRollout('ro1', 'failed', iso(T0 + 99));
  await store.finishRollout('ro1', 'succeeded', iso(T0 + 100)); // finished already: no change
  const [back] = await store.recent(10);
  assert.equal(back?.view.state, 'failed');
  assert.equal(back?.view.finishedAt, iso(T0 + 99));
  assert.deepEqual(back?.view.nodes[1], step);
  assert.deepEqual(back?.view.nodes[2], { ...r.view.nodes[2]!, state: 'skipped', reason: 'offline' });
  assert.deepEqual(back?.jobIds, r.jobIds);
  await assert.rejects(store.insertRollout(rollout('ro1', T0 + 1, ['x'])), 'a rollout id is used once');
  assert.equal((await store.recent(10))[0]?.view.nodes.length, 3, 'the failed insert left no steps behind');
});

upgrades.test('recent: the newest N, every running one too, oldest first', async ({ store }) => {
  for (let i = 0; i < 5; i++) await store.insertRollout(rollout(`ro${i}`, T0 + i * 1000, ['web']));
  for (const i of [1, 2, 3, 4]) await store.finishRollout(`ro${i}`, 'succeeded', iso(T0 + i * 1000 + 1));
  assert.deepEqual(
    (await store.recent(2)).map((r) => r.view.id),
    ['ro0', 'ro3', 'ro4'],
    'ro0 still runs',
  );
  assert.deepEqual(
    (await store.recent(0)).map((r) => r.view.id),
    ['ro0'],
  );
  await store.insertRollout({ ...rollout('empty', T0 + 9000, []), jobIds: [] });
  assert.deepEqual((await store.recent(1)).at(-1)?.view.nodes, []);
});
