/** Live inventory against real private engines: two hosts, each with a real agent process.
 * A container started on a host shows in the hub's API within 500 ms; an engine that stops
 * and comes back under a running agent is reported and re-listed; the hub's view survives
 * its own restart. */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub, removeHubData } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let engines: TestEngine[];
let hub: TestHub;
let hubDir: string;
let port: number;
const agents: DockfleetProcess[] = [];

async function containers(node: string): Promise<Array<{ Id: string; State: string; Names: string[] }>> {
  const res = await hub.api('GET', `/api/v1/nodes/${node}/containers`);
  assert.equal(res.status, 200);
  return res.json;
}

before(async () => {
  engines = await startEngines(2, { prefix: 'inv' });
  hubDir = await mkdtemp(join(tmpdir(), 'dockfleet-inv-'));
  port = await freePort();
  hub = await startTestHub({ dataDir: hubDir, port });
  for (const [i, engine] of engines.entries()) {
    const name = `host-${i}`;
    const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, name), '--state', join(hubDir, `agent-${name}`), '--docker', engine.dockerHost]);
    await agent.waitForLine(new RegExp(`agent ${name} connected`));
    agents.push(agent);
  }
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub.stop();
  await stopEngines(engines);
  await removeHubData(hubDir);
});

test('each node reports its own engine: version, host facts, images', async () => {
  for (const [i, engine] of engines.entries()) {
    const version = (await engineRequest(engine.socketPath, 'GET', '/version')).json;
    const node = await waitFor(
      async () => {
        const n = (await hub.api('GET', `/api/v1/nodes/host-${i}`)).json;
        return n.engine.state === 'up' && n.engine.version ? n : null;
      },
      5_000,
      'engine facts',
    );
    assert.equal(node.status, 'online');
    assert.equal(node.engine.version, version.Version);
    assert.ok(node.host.cpus >= 1);
    assert.ok(node.host.memoryBytes > 0);
    const images = (await hub.api('GET', `/api/v1/nodes/host-${i}/images`)).json;
    assert.ok(images.some((img: { RepoTags?: string[] }) => img.RepoTags?.includes('dockfleet-test/busybox:latest')));
  }
  const list = (await hub.api('GET', '/api/v1/nodes')).json;
  assert.deepEqual(
    list.map((n: { name: string; status: string }) => [n.name, n.status]),
    [
      ['host-0', 'online'],
      ['host-1', 'online'],
    ],
  );
});

test('a container started on a host is visible in the hub within 500 ms, on that node only', async () => {
  const latencies: number[] = [];
  for (let i = 0; i < 5; i++) {
    const id = await runContainer(engines[0]!, { name: `fresh-${i}`, labels: { 'dockfleet.test': 'inventory' }, start: false });
    await engineRequest(engines[0]!.socketPath, 'POST', `/containers/${id}/start`);
    const started = Date.now();
    await waitFor(async () => (await containers('host-0')).some((c) => c.Id === id && c.State === 'running'), 2_000, `container ${i} in the hub`, 5);
    latencies.push(Date.now() - started);
    assert.ok(!(await containers('host-1')).some((c) => c.Id === id));
  }
  assert.ok(Math.max(...latencies) <= 500, `started → visible: ${latencies.join(', ')} ms`);
});

test('stopping and removing a container is reflected too', async () => {
  const id = (await containers('host-0')).find((c) => c.Names.includes('/fresh-0'))!.Id;
  await engineRequest(engines[0]!.socketPath, 'POST', `/containers/${id}/stop?t=1`);
  await waitFor(async () => (await containers('host-0')).find((c) => c.Id === id)?.State === 'exited', 2_000, 'exited in the hub', 5);
  await engineRequest(engines[0]!.socketPath, 'DELETE', `/containers/${id}?force=1`);
  await waitFor(async () => !(await containers('host-0')).some((c) => c.Id === id), 2_000, 'gone from the hub', 5);
  const volume = await engineRequest(engines[1]!.socketPath, 'POST', '/volumes/create', { Name: 'inv-vol' });
  assert.equal(volume.status, 201);
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes/host-1/volumes')).json.some((v: { Name: string }) => v.Name === 'inv-vol'), 2_000, 'volume in the hub', 5);
});

test('an engine stopped under a running agent is reported; when it returns the inventory is re-listed', async () => {
  const engine = engines[1]!;
  await engine.kill();
  const down = await waitFor(
    async () => {
      const n = (await hub.api('GET', '/api/v1/nodes/host-1')).json;
      return n.engine.state === 'down' ? n : null;
    },
    10_000,
    'engine down reported',
  );
  assert.equal(down.status, 'online', 'the agent itself stays connected');
  assert.match(down.engine.error, /engine/);
  await engine.start();
  // Something that happened while the agent could not watch: it must appear after re-listing.
  const id = await runContainer(engine, { name: 'after-restart' });
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes/host-1')).json.engine.state === 'up', 15_000, 'engine up again');
  await waitFor(async () => (await containers('host-1')).some((c) => c.Id === id), 5_000, 'container made after the restart');
  assert.equal(agents[1]!.child.exitCode, null, 'agent still running');
});

test("the hub's view survives a hub restart and is refreshed when agents return", async () => {
  const known = (await containers('host-0')).map((c) => c.Id).sort();
  assert.ok(known.length >= 4);
  await hub.stop({ keepData: true });
  // A container made while the hub is down.
  const id = await runContainer(engines[0]!, { name: 'while-hub-down' });
  hub = await startTestHub({ dataDir: hubDir, port });
  // Before the agent is back the hub serves what it last knew.
  const stale = (await containers('host-0')).map((c) => c.Id).sort();
  assert.deepEqual(stale, known);
  await waitFor(async () => (await containers('host-0')).some((c) => c.Id === id), 15_000, 'fresh inventory after reconnect');
});
