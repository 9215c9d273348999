/** Enrollment: single-use codes pinned to the hub's CA, join tokens with approval, and every
 * way a code can be wrong, each failing cleanly with nothing half-made. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { enrollAgent } from '../src/agent/enroll.ts';
import { DockfleetError } from '../src/protocol/errors.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent } from './support/agent-fixture.ts';

let hub: TestHub;
let other: TestHub;
before(async () => {
  hub = await startTestHub();
  other = await startTestHub();
});
after(async () => {
  await hub.stop();
  await other.stop();
});

const hasCode = (code: string) => (e: unknown) => e instanceof DockfleetError && e.code === code;
const tempState = () => mkdtemp(join(tmpdir(), 'dockfleet-enroll-'));
async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

test('a single-use code enrolls a node that comes online, keeping its private key to itself', async () => {
  const code = await mintCode(hub, 'alpha');
  assert.match(code, new RegExp(`^DFE1-${hub.caDigest}-[0-9a-f]{32}$`));
  const agent = await startTestAgent({ hubUrl: hub.url, code });
  try {
    await agent.waitConnected();
    assert.equal(await nodeStatus(hub, 'alpha'), 'online');
    const keyFile = await stat(join(agent.stateDir, 'key.pem'));
    assert.equal(keyFile.mode & 0o777, 0o600);
    // The hub's database holds a public key and a hash of the code, nothing replayable.
    const db = await readFile(join(hub.dataDir, 'dockfleet.db-wal')).catch(() => Buffer.alloc(0));
    const dbMain = await readFile(join(hub.dataDir, 'dockfleet.db'));
    const all = Buffer.concat([db, dbMain]).toString('latin1');
    assert.ok(!all.includes('PRIVATE KEY'), 'no private key in the hub database');
    assert.ok(!all.includes(code.split('-')[2]!), 'no code secret in the hub database');
    assert.ok(all.includes('PUBLIC KEY'));
  } finally {
    await agent.stop();
  }
  await waitFor(async () => (await nodeStatus(hub, 'alpha')) === 'offline', 5_000, 'alpha offline after its agent stopped');
});

test('a used code fails with code_used and writes nothing', async () => {
  const code = await mintCode(hub, 'bravo');
  await enrollAgent({ hubUrl: new URL(hub.url), code, stateDir: await tempState() });
  const dir = join(await tempState(), 'second');
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code, stateDir: dir }), hasCode('code_used'));
  assert.ok(await isEmptyOrMissing(dir));
});

test('an expired code fails with code_expired', async () => {
  const code = await mintCode(hub, 'charlie', 1);
  await new Promise((r) => setTimeout(r, 1_100));
  const dir = await tempState();
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code, stateDir: dir }), hasCode('code_expired'));
  assert.ok(await isEmptyOrMissing(dir));
  assert.equal(await nodeStatus(hub, 'charlie'), undefined);
});

test('a forged code (right CA digest, made-up secret) fails with code_invalid', async () => {
  const forged = `DFE1-${hub.caDigest}-${'0'.repeat(32)}`;
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code: forged, stateDir: await tempState() }), hasCode('code_invalid'));
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code: 'DFE1-garbage', stateDir: await tempState() }), hasCode('code_invalid'));
});

test('a hub whose CA does not match the code is refused before anything is sent', async () => {
  // A code minted by `other`, presented to `hub` (as if `hub` were an impostor at that address).
  const code = await mintCode(other, 'delta');
  const dir = await tempState();
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code, stateDir: dir }), hasCode('hub_untrusted'));
  assert.ok(await isEmptyOrMissing(dir));
  // The code was never shown to the impostor, so it still works at the real hub.
  const identity = await enrollAgent({ hubUrl: new URL(other.url), code, stateDir: dir });
  assert.equal(identity.node, 'delta');
});

test('a name already taken is refused when minting and when redeeming', async () => {
  await mintCode(hub, 'echo').then((code) => enrollAgent({ hubUrl: new URL(hub.url), code, stateDir: join(tmpdir(), `df-echo-${process.pid}`) }));
  const res = await hub.api('POST', '/api/v1/enrollments', { name: 'echo' });
  assert.equal(res.status, 409);
  assert.equal(res.json.error.code, 'name_taken');
  const bad = await hub.api('POST', '/api/v1/enrollments', { name: 'Not A Name!' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'validation_failed');
  await rm(join(tmpdir(), `df-echo-${process.pid}`), { recursive: true, force: true });
});

test('a join token enrolls nodes as pending; approval brings them online at once', async () => {
  const res = await hub.api('POST', '/api/v1/join-tokens', {});
  assert.equal(res.status, 201);
  const token = res.json.token as string;
  assert.match(token, /^DFJ1-/);
  await assert.rejects(enrollAgent({ hubUrl: new URL(hub.url), code: token, stateDir: await tempState() }), hasCode('bad_request'));
  const agent = await startTestAgent({ hubUrl: hub.url, code: token, name: 'foxtrot' });
  try {
    await waitFor(() => agent.pending > 0, 10_000, 'agent parked as pending');
    assert.equal(await nodeStatus(hub, 'foxtrot'), 'pending');
    assert.equal(agent.connects, 0);
    const approve = await hub.api('POST', '/api/v1/nodes/foxtrot/approve');
    assert.equal(approve.status, 200);
    await agent.waitConnected(1, 3_000);
    assert.equal(await nodeStatus(hub, 'foxtrot'), 'online');
    const again = await hub.api('POST', '/api/v1/nodes/foxtrot/approve');
    assert.equal(again.json.error.code, 'invalid_state');
    // The token is reusable for further nodes.
    const second = await enrollAgent({ hubUrl: new URL(hub.url), code: token, name: 'golf', stateDir: await tempState() });
    assert.equal(second.node, 'golf');
    assert.equal(await nodeStatus(hub, 'golf'), 'pending');
  } finally {
    await agent.stop();
  }
});

test('the REST API wants a valid bearer token everywhere but /healthz and enrollment', async () => {
  assert.equal((await hub.api('GET', '/healthz', undefined, '')).status, 200);
  for (const token of ['', 'dft_wrongwrongwrongwrongwrong']) {
    const res = await hub.api('GET', '/api/v1/nodes', undefined, token);
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'unauthenticated');
  }
  const missing = await hub.api('GET', '/api/v1/nodes/nope/containers');
  assert.equal(missing.json.error.code, 'node_not_found');
  const big = await hub.api('POST', '/api/v1/enrollments', JSON.stringify({ name: 'x', pad: 'y'.repeat(100_000) }));
  assert.equal(big.status, 413);
  assert.equal(big.json.error.code, 'payload_too_large');
  const notJson = await hub.api('POST', '/api/v1/enrollments', '{nope');
  assert.equal(notJson.json.error.code, 'bad_request');
});

test('the hub negotiates AES-128-GCM first, over TLS 1.3 by default and 1.2 when asked', async () => {
  const { connect } = await import('node:tls');
  const url = new URL(hub.url);
  const cipherOf = (opts: { maxVersion?: 'TLSv1.2' }): Promise<{ name: string; version: string }> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: url.hostname, port: Number(url.port), ca: hub.caPem, servername: url.hostname, ...opts }, () => {
        const c = s.getCipher();
        s.destroy();
        resolve({ name: c.standardName, version: c.version });
      });
      s.once('error', reject);
    });
  assert.deepEqual(await cipherOf({}), { name: 'TLS_AES_128_GCM_SHA256', version: 'TLSv1.3' });
  assert.deepEqual(await cipherOf({ maxVersion: 'TLSv1.2' }), { name: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', version: 'TLSv1.2' });
});
