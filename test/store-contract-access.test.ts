/** The access store's contract, on SQLite and on PostgreSQL: users' role, scope and disabling
 * (which ends their sessions), grants by node or label, token expiry and use, pending codes. */
import assert from 'node:assert/strict';
import type { AccessStore, GrantRecord } from '../src/store/access-store.ts';
import { PostgresAccessStore } from '../src/store/postgres/postgres-access-store.ts';
import { SqliteAccessStore } from '../src/store/sqlite/sqlite-access-store.ts';
import { type RawSql, storeContract } from './support/store-contract.ts';

const access = storeContract<AccessStore>('access', { sqlite: (db) => new SqliteAccessStore(db), postgres: (db) => new PostgresAccessStore(db) });

async function user(sql: RawSql, id: string, name: string, password: string | null = null): Promise<void> {
  await sql('INSERT INTO users (id, name, role, created_at, password_hash) VALUES (?, ?, ?, ?, ?)', id, name, 'viewer', 100, password);
}
async function token(sql: RawSql, hash: string, userId: string, createdAt: number, revokedAt: number | null = null): Promise<void> {
  await sql('INSERT INTO api_tokens (token_hash, name, user_id, created_at, revoked_at) VALUES (?, ?, ?, ?, ?)', hash, `tok-${hash}`, userId, createdAt, revokedAt);
}
async function code(sql: RawSql, hash: string, createdAt: number, expiresAt: number, usedAt: number | null = null): Promise<void> {
  await sql('INSERT INTO enrollment_codes (secret_hash, kind, node_name, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, ?, ?)', hash, 'single', `node-${hash}`, createdAt, expiresAt, usedAt);
}

access.test('users: listed by name with scope and password presence; role and scope set together', async (store, _engine, sql) => {
  await user(sql, 'u2', 'zoe', 'hash');
  await user(sql, 'u1', 'adam');
  assert.deepEqual(await store.listUsers(), [
    { id: 'u1', name: 'adam', role: 'viewer', scoped: false, hasPassword: false, createdAt: 100, disabledAt: null },
    { id: 'u2', name: 'zoe', role: 'viewer', scoped: false, hasPassword: true, createdAt: 100, disabledAt: null },
  ]);
  assert.equal(await store.isScoped('u1'), false);
  assert.equal(await store.setUserAccess('u1', 'operator', true), true);
  assert.equal(await store.isScoped('u1'), true);
  assert.equal((await store.listUsers())[0]?.role, 'operator');
  assert.equal(await store.setUserAccess('nobody', 'admin', false), false);
  assert.equal(await store.isScoped('nobody'), false);
  await assert.rejects(store.setUserAccess('u1', 'root' as never, false), 'the role is checked');
});

access.test('disabling a user ends its sessions; enabling keeps what is left; an unknown user is false', async (store, _engine, sql) => {
  await user(sql, 'u1', 'adam');
  await user(sql, 'u2', 'zoe');
  for (const [id, owner] of [
    ['s1', 'u1'],
    ['s2', 'u1'],
    ['s3', 'u2'],
  ])
    await sql('INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)', id, owner, 1, 9_999);
  assert.equal(await store.setUserDisabled('u1', 500), true);
  assert.equal((await store.listUsers())[0]?.disabledAt, 500);
  const left = await sql<{ id_hash: string }>('SELECT id_hash FROM sessions ORDER BY id_hash');
  assert.deepEqual(
    left.map((r) => r.id_hash),
    ['s3'],
  );
  assert.equal(await store.setUserDisabled('u2', null), true);
  assert.equal((await sql('SELECT id_hash FROM sessions')).length, 1, 'enabling ends nothing');
  assert.equal(await store.setUserDisabled('u1', null), true);
  assert.equal((await store.listUsers())[0]?.disabledAt, null);
  assert.equal(await store.setUserDisabled('nobody', 1), false);
});

access.test('grants: by node or by label, listed oldest first, deleted only by their user', async (store, _engine, sql) => {
  await user(sql, 'u1', 'adam');
  await user(sql, 'u2', 'zoe');
  const byLabel: GrantRecord = { id: 'g2', userId: 'u1', node: null, labelKey: 'customer', labelValue: 'acme', role: 'operator', createdAt: 20 };
  const byNode: GrantRecord = { id: 'g1', userId: 'u1', node: 'shop-01', labelKey: null, labelValue: null, role: 'viewer', createdAt: 10 };
  await store.insertGrant(byLabel);
  await store.insertGrant(byNode);
  await store.insertGrant({ ...byNode, id: 'g3', userId: 'u2' });
  assert.deepEqual(await store.listGrants('u1'), [byNode, byLabel]);
  assert.equal(await store.deleteGrant('u2', 'g1'), false, "another user's grant");
  assert.equal(await store.deleteGrant('u1', 'g1'), true);
  assert.equal(await store.deleteGrant('u1', 'g1'), false);
  assert.deepEqual(await store.listGrants('u1'), [byLabel]);
  assert.deepEqual(await store.listGrants('nobody'), []);
  await assert.rejects(store.insertGrant({ ...byNode, id: 'g4', labelKey: 'k', labelValue: 'v' }), 'a node and a label at once');
  await assert.rejects(store.insertGrant({ ...byNode, id: 'g5', node: null }), 'neither a node nor a label');
  await assert.rejects(store.insertGrant({ ...byNode, id: 'g6', userId: 'nobody' }), 'a grant needs its user');
});

access.test('tokens: expiry set and cleared, use recorded at most once per window, live ones listed oldest first', async (store, _engine, sql) => {
  await user(sql, 'u1', 'adam');
  await token(sql, 'h2', 'u1', 20);
  await token(sql, 'h1', 'u1', 10);
  await token(sql, 'h3', 'u1', 30, 35);
  assert.deepEqual(await store.tokenUse('h1'), { expiresAt: null, lastUsedAt: null });
  assert.equal(await store.tokenUse('missing'), null);
  await store.setTokenExpiry('h1', 5_000);
  await store.touchToken('h1', 1_000, 1_000);
  await store.touchToken('h1', 1_030, 970); // used at 1 000, after 970: not recorded again
  assert.deepEqual(await store.tokenUse('h1'), { expiresAt: 5_000, lastUsedAt: 1_000 });
  await store.touchToken('h1', 1_070, 1_010);
  assert.deepEqual(await store.tokenUse('h1'), { expiresAt: 5_000, lastUsedAt: 1_070 });
  await store.setTokenExpiry('h1', null);
  assert.deepEqual(await store.listTokenSummaries('u1'), [
    { tokenHash: 'h1', name: 'tok-h1', createdAt: 10, expiresAt: null, lastUsedAt: 1_070 },
    { tokenHash: 'h2', name: 'tok-h2', createdAt: 20, expiresAt: null, lastUsedAt: null },
  ]);
  assert.deepEqual(await store.listTokenSummaries('nobody'), []);
});

access.test('codes: pending ones (unused, unexpired) oldest first; revoking ends one now, once', async (store, _engine, sql) => {
  await code(sql, 'c2', 20, 1_000);
  await code(sql, 'c1', 10, 1_000);
  await code(sql, 'used', 5, 1_000, 15);
  await code(sql, 'old', 1, 40);
  assert.deepEqual(await store.listPendingCodes(50), [
    { secretHash: 'c1', kind: 'single', nodeName: 'node-c1', createdAt: 10, expiresAt: 1_000 },
    { secretHash: 'c2', kind: 'single', nodeName: 'node-c2', createdAt: 20, expiresAt: 1_000 },
  ]);
  assert.equal(await store.revokeCode('c1', 60), true);
  assert.equal(await store.revokeCode('c1', 61), false, 'it has expired');
  assert.equal(await store.revokeCode('used', 60), false);
  assert.equal(await store.revokeCode('old', 60), false);
  assert.equal(await store.revokeCode('missing', 60), false);
  assert.deepEqual(
    (await store.listPendingCodes(60)).map((c) => c.secretHash),
    ['c2'],
  );
});
