/** Revoking cuts a node off at once and for good; rotating replaces its key with no downtime. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DockfleetError } from '../src/protocol/errors.ts';
import { keyIdOf } from '../src/protocol/node-keys.ts';
import { createPublicKey } from 'node:crypto';
import { mintCode, nodeStatus, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent } from './support/agent-fixture.ts';
import { authFrameFor, openRawClient } from './support/raw-gateway-client.ts';

let hub: TestHub;
before(async () => (hub = await startTestHub()));
after(() => hub.stop());

async function rawAuth(node: string, privateKeyPem: string): Promise<any> {
  const keyId = keyIdOf(createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString());
  const client = await openRawClient(hub.url, hub.caPem);
  client.send(authFrameFor(client, (await client.nextFrame()).nonce, node, keyId, privateKeyPem));
  const frame = await client.nextFrame();
  client.terminate();
  return frame;
}

test('revoke cuts the live connection within a second and the key never works again', async () => {
  const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'rev') });
  await agent.waitConnected();
  const key = await readFile(join(agent.stateDir, 'key.pem'), 'utf8');
  const started = Date.now();
  const res = await hub.api('POST', '/api/v1/nodes/rev/revoke');
  assert.equal(res.status, 200);
  assert.equal(res.json.status, 'revoked');
  // The agent learns it is revoked and stops for good rather than retrying.
  await assert.rejects(agent.done, (e: unknown) => e instanceof DockfleetError && e.code === 'node_revoked');
  const took = Date.now() - started;
  assert.ok(took < 1_000, `agent cut off after ${took} ms`);
  assert.equal(await nodeStatus(hub, 'rev'), 'revoked');
  const frame = await rawAuth('rev', key);
  assert.equal(frame.code, 'node_revoked');
  const twice = await hub.api('POST', '/api/v1/nodes/rev/revoke');
  assert.equal(twice.json.error.code, 'invalid_state');
  // The name can be given to a new machine; the old key still does not work.
  const fresh = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'rev') });
  await fresh.waitConnected();
  assert.equal((await rawAuth('rev', key)).code, 'unauthenticated');
  await fresh.stop();
});

test('rotate replaces the key over the live link: no reconnect, old key refused', async () => {
  const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'rot') });
  await agent.waitConnected();
  const oldKey = await readFile(join(agent.stateDir, 'key.pem'), 'utf8');
  const res = await hub.api('POST', '/api/v1/nodes/rot/rotate');
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const newKey = await readFile(join(agent.stateDir, 'key.pem'), 'utf8');
  assert.notEqual(newKey, oldKey);
  assert.equal(res.json.keyId, keyIdOf(createPublicKey(newKey).export({ type: 'spki', format: 'pem' }).toString()));
  // Still the same connection, still answering.
  assert.equal(agent.connects, 1);
  assert.equal((await hub.api('GET', '/api/v1/nodes/rot/ping')).json.status, 204);
  assert.equal((await rawAuth('rot', oldKey)).code, 'key_retired');
  await agent.stop();
  // A restart from the state dir uses the new key.
  const again = await startTestAgent({ hubUrl: hub.url, stateDir: agent.stateDir });
  await again.waitConnected();
  assert.equal(await nodeStatus(hub, 'rot'), 'online');
  await again.stop();
});

test('a rotation whose commit never reached the agent heals on reconnect', async () => {
  const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'heal') });
  await agent.waitConnected();
  const { AgentIdentity } = await import('../src/agent/identity.ts');
  // Play the hub's first two steps by hand: the agent prepares a key, the hub switches to it,
  // and the commit is "lost" because the agent goes away first.
  const identity = (await AgentIdentity.load(agent.stateDir))!;
  const prepared = await identity.prepareRotation();
  const node = (await hub.api('GET', '/api/v1/nodes/heal')).json;
  assert.equal(node.status, 'online');
  await agent.stop();
  const record = hub.hub.registry.byName('heal')!;
  const { SqliteStore } = await import('../src/store/sqlite/sqlite-store.ts');
  const store = new SqliteStore(join(hub.dataDir, 'dockfleet.db'));
  await store.replaceNodeKey(record.id, { keyId: prepared.keyId, nodeId: record.id, publicKey: prepared.publicKey, state: 'active', createdAt: Date.now() }, Date.now());
  await store.close();
  const again = await startTestAgent({ hubUrl: hub.url, stateDir: agent.stateDir });
  await again.waitConnected();
  const current = await readFile(join(agent.stateDir, 'key.pem'), 'utf8');
  assert.equal(keyIdOf(createPublicKey(current).export({ type: 'spki', format: 'pem' }).toString()), prepared.keyId);
  await again.stop();
});

test('rotating or pinging an offline or unknown node fails clearly', async () => {
  const offline = await hub.api('POST', '/api/v1/nodes/rot/rotate');
  assert.equal(offline.status, 502);
  assert.equal(offline.json.error.code, 'node_offline');
  const unknown = await hub.api('POST', '/api/v1/nodes/nobody/rotate');
  assert.equal(unknown.json.error.code, 'node_not_found');
});
