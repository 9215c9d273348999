/** The hub's internal headers (x-dockfleet-*) are its own: a client that sends them, through
 * any route that reaches an agent, cannot make a plain call hang or turn it into a hijack. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { hubRequest } from './support/hub-request.ts';

let engines: TestEngine[];
let hub: TestHub;
let agent: TestAgent;

before(async () => {
  engines = await startEngines(1, { prefix: 'hdr' });
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'hdr-0'), docker: engines[0]!.dockerHost });
  await agent.waitConnected();
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines ?? []);
});

function create(name: string, forged: Record<string, string>) {
  return hubRequest(hub.url, hub.caPem, `/docker/nodes/hdr-0/v1.41/containers/create?name=${name}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json', ...forged },
    body: JSON.stringify({ Image: BUSYBOX_IMAGE, Cmd: ['true'] }),
    timeoutMs: 8_000,
  });
}

async function exists(name: string): Promise<boolean> {
  return (await engineRequest(engines[0]!.socketPath, 'GET', `/containers/${name}/json`)).status === 200;
}

test('a forged body length larger than the body does not make the call hang', async () => {
  const res = await create('forged-length', { 'x-dockfleet-body-length': '100000', 'x-dockfleet-upgrade': 'tcp' });
  assert.equal(res.status, 201, res.text);
  assert.match(res.json.Id, /^[0-9a-f]{64}$/);
  assert.ok(await exists('forged-length'));
});

test('a forged upgrade mark on a plain call does not turn it into a hijack', async () => {
  const res = await create('forged-upgrade', { 'x-dockfleet-upgrade': 'tcp' });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.headers['x-dockfleet-upgraded'], undefined);
  assert.match(String(res.headers['content-type']), /json/);
  assert.ok(await exists('forged-upgrade'));
});

test('any other internal header a client sends is dropped, and the call answers normally', async () => {
  const res = await hubRequest(hub.url, hub.caPem, '/docker/nodes/hdr-0/_ping', {
    headers: { authorization: `Bearer ${hub.token}`, 'x-dockfleet-policy': 'refused', 'x-dockfleet-upgraded': '1' },
  });
  assert.equal(res.status, 200);
  assert.equal(res.text, 'OK');
});
