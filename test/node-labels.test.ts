/** Node labels: set and removed through the API and the CLI, shown in node views, validated,
 * and changed only by admins and operators. */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';
import { spawnDockfleet } from './support/processes.ts';

let hub: TestHub;
let agent: JobAgent;

before(async () => {
  hub = await startTestHub();
  agent = await startJobAgent({ hubUrl: hub.url, code: await mintCode(hub, 'lab1'), answer: (job, res) => succeed(job, res) });
  await agent.waitConnected();
});
after(async () => {
  await agent?.stop();
  await hub?.stop();
});

test('labels are set, shown in node views, and removed with null', async () => {
  const set = await hub.api('PUT', '/api/v1/nodes/lab1/labels', { labels: { role: 'web', 'zone.eu-1': 'a' } });
  assert.equal(set.status, 200, JSON.stringify(set.json));
  assert.deepEqual(set.json.labels, { role: 'web', 'zone.eu-1': 'a' });
  const one = await hub.api('GET', '/api/v1/nodes/lab1');
  assert.deepEqual(one.json.labels, { role: 'web', 'zone.eu-1': 'a' });
  const removed = await hub.api('PUT', '/api/v1/nodes/lab1/labels', { labels: { role: null } });
  assert.deepEqual(removed.json.labels, { 'zone.eu-1': 'a' });
  const list = await hub.api('GET', '/api/v1/nodes');
  assert.deepEqual(list.json.find((n: { name: string }) => n.name === 'lab1').labels, { 'zone.eu-1': 'a' });
});

test('bad label keys and values are refused, and nothing changes', async () => {
  for (const labels of [{ Role: 'x' }, { 'com.docker.thing': 'x' }, { 'a..b': 'x' }, { ['k'.repeat(129)]: 'x' }, { ok: 'bad\u0000value' }, { ok: 'v'.repeat(257) }]) {
    const res = await hub.api('PUT', '/api/v1/nodes/lab1/labels', { labels });
    assert.equal(res.status, 400, JSON.stringify(labels));
    assert.equal(res.json.error.code, 'validation_failed');
  }
  assert.deepEqual((await hub.api('GET', '/api/v1/nodes/lab1')).json.labels, { 'zone.eu-1': 'a' });
  const unknown = await hub.api('PUT', '/api/v1/nodes/nosuch/labels', { labels: { a: 'b' } });
  assert.equal(unknown.json.error.code, 'node_not_found');
});

test('a viewer cannot change labels', async () => {
  const user = await hub.api('POST', '/api/v1/users', { name: 'vera', role: 'viewer' });
  assert.equal(user.status, 201);
  const res = await hub.api('PUT', '/api/v1/nodes/lab1/labels', { labels: { a: 'b' } }, user.json.token);
  assert.equal(res.status, 403);
  assert.equal(res.json.error.code, 'forbidden');
});

test('labels survive a hub restart', async () => {
  await hub.api('PUT', '/api/v1/nodes/lab1/labels', { labels: { keep: 'yes' } });
  await agent.stop();
  await hub.stop({ keepData: true });
  hub = await startTestHub({ dataDir: hub.dataDir });
  assert.deepEqual((await hub.api('GET', '/api/v1/nodes/lab1')).json.labels, { keep: 'yes', 'zone.eu-1': 'a' });
});

test('dockfleet label NODE key=value… sets, and key= removes', async () => {
  const caFile = join(hub.dataDir, 'test-ca.pem');
  await writeFile(caFile, hub.caPem);
  const env = { DOCKFLEET_HUB: hub.url, DOCKFLEET_TOKEN: hub.token, DOCKFLEET_CA: caFile };
  const run = spawnDockfleet(['label', 'lab1', 'tier=db', 'keep=', '--json'], env);
  const { code } = await run.exited;
  assert.equal(code, 0, run.stderr());
  assert.deepEqual(JSON.parse(run.stdout().trim()), { tier: 'db', 'zone.eu-1': 'a' });
  const bad = spawnDockfleet(['label', 'lab1', 'novalue'], env);
  assert.equal((await bad.exited).code, 2);
});
