/** The hub's view of a host equals the engine's after every change and every reconnect, also
 * when the sections are large (well over the stream's 16 KiB high-water mark, so the agent's
 * writes meet backpressure) and when many sections change at once. Real engine, real agent
 * process, real hub. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { engineRequest, runContainer, type TestEngine } from './support/engines.ts';
import { startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { engineSections, importTinyImage, waitSectionsEqual } from './support/inventory-compare.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import type { DockfleetProcess } from './support/processes.ts';

const NODE = 'big-host';
/** A label long enough that 60 containers make a list of well over 64 KiB. */
const LONG = 'x'.repeat(8000);

let engine: TestEngine;
let hub: TestHub;
let rig: NodeRig | undefined;
let hubDir: string;
let port: number;
let agent: DockfleetProcess;

/** Blocks this process (and so the in-process hub) for `ms`: the hub stops reading its links,
 * its stream windows fill, and the agent's inventory writes wait for 'drain'. */
function stallHub(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs `jobs` with at most `width` in flight. */
async function inParallel(width: number, jobs: Array<() => Promise<unknown>>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) await jobs[next++]!();
    }),
  );
}

before(async () => {
  rig = await startNodeRig('invc', NODE);
  ({ engine, hub, hubDir, port, agent } = rig);
});

// The hub may have been restarted: stop the one running now.
after(() => stopNodeRig({ ...rig, hub }));

test('large sections changing all at once: the hub ends equal to the engine, section by section', { timeout: 120_000 }, async () => {
  const jobs: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < 64; i++) {
    jobs.push(() => runContainer(engine, { name: `big-${i}`, labels: { 'dockfleet.test': LONG, n: String(i) }, start: i % 2 === 0 }));
  }
  for (let i = 0; i < 26; i++) jobs.push(() => importTinyImage(engine, 'dockfleet-test/tiny', `t${i}`, { 'dockfleet.test': LONG, n: String(i) }));
  for (let i = 0; i < 30; i++) {
    jobs.push(() => engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: `big-vol-${i}`, Labels: { 'dockfleet.test': LONG } }));
  }
  for (let i = 0; i < 6; i++) {
    jobs.push(() => engineRequest(engine.socketPath, 'POST', '/networks/create', { Name: `big-net-${i}`, Labels: { 'dockfleet.test': LONG } }));
  }
  // Interleaved, so every section keeps changing while the others are being written.
  const mixed = jobs
    .map((job, i) => ({ job, key: (i * 7919) % jobs.length }))
    .sort((a, b) => a.key - b.key)
    .map((j) => j.job);
  await inParallel(6, mixed);
  const listed = await engineSections(engine);
  assert.ok(listed.containers.length >= 64 && listed.images.length >= 27 && listed.volumes.length >= 30 && listed.networks.length >= 9);
  const containersJson = (await engineRequest(engine.socketPath, 'GET', '/containers/json?all=1')).text;
  assert.ok(containersJson.length > 64 * 1024, `containers list is ${containersJson.length} bytes`);
  await waitSectionsEqual(hub, NODE, engine, 5_000);

  // Many sections at once again, now removing: every section shrinks together.
  const removals: Array<() => Promise<unknown>> = [];
  for (let i = 0; i < 64; i += 3) removals.push(() => engineRequest(engine.socketPath, 'DELETE', `/containers/big-${i}?force=1`));
  for (let i = 0; i < 26; i += 3) removals.push(() => engineRequest(engine.socketPath, 'DELETE', `/images/dockfleet-test/tiny:t${i}`));
  for (let i = 0; i < 30; i += 3) removals.push(() => engineRequest(engine.socketPath, 'DELETE', `/volumes/big-vol-${i}`));
  for (let i = 0; i < 6; i += 3) removals.push(() => engineRequest(engine.socketPath, 'DELETE', `/networks/big-net-${i}`));
  await inParallel(6, removals);
  await waitSectionsEqual(hub, NODE, engine, 5_000);
});

test('while the hub reads slowly, every section changed meanwhile reaches it', { timeout: 120_000 }, async () => {
  for (let round = 0; round < 4; round++) {
    // One change in every section at once, plus containers starting (each a large re-list).
    const ops = [
      ...[1, 3, 5, 7, 9, 11].map((n) => engineRequest(engine.socketPath, 'POST', `/containers/big-${n + 12 * round}/start`)),
      importTinyImage(engine, 'dockfleet-test/slow', `r${round}`, { 'dockfleet.test': LONG }),
      engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: `slow-vol-${round}`, Labels: { 'dockfleet.test': LONG } }),
      engineRequest(engine.socketPath, 'POST', '/networks/create', { Name: `slow-net-${round}` }),
    ];
    await new Promise((r) => setTimeout(r, 20));
    stallHub(800);
    await Promise.all(ops);
    await waitSectionsEqual(hub, NODE, engine, 3_000);
  }
});

test('an image imported and a container removed while the hub is down are seen after it comes back', { timeout: 90_000 }, async () => {
  await hub.stop({ keepData: true });
  await importTinyImage(engine, 'dockfleet-test/while-down', 'v1', { 'dockfleet.test': LONG });
  await engineRequest(engine.socketPath, 'DELETE', '/containers/big-1?force=1');
  const volume = await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'while-down-vol' });
  assert.equal(volume.status, 201);
  hub = await startTestHub({ dataDir: hubDir, port });
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 20_000, agent.lineCount());
  // The agent is back: from here on the hub must show what the engine has, not what its store had.
  await waitSectionsEqual(hub, NODE, engine, 3_000);
  const images = (await hub.api('GET', `/api/v1/nodes/${NODE}/images`)).json as Array<{ RepoTags?: string[] }>;
  assert.ok(images.some((i) => i.RepoTags?.includes('dockfleet-test/while-down:v1')));
});

test('a container that starts and exits at once shows "exited" within a second', { timeout: 90_000 }, async () => {
  const late: string[] = [];
  for (let i = 0; i < 12; i++) {
    const id = await runContainer(engine, { name: `blink-${i}`, cmd: ['true'], labels: { 'dockfleet.test': LONG } });
    const started = Date.now();
    try {
      await waitFor(
        async () => {
          const list = (await hub.api('GET', `/api/v1/nodes/${NODE}/containers`)).json as Array<{ Id: string; State: string }>;
          return list.find((c) => c.Id === id)?.State === 'exited';
        },
        1_000,
        `blink-${i} exited in the hub`,
        10,
      );
    } catch {
      const engineState = (await engineRequest(engine.socketPath, 'GET', `/containers/${id}/json`)).json?.State?.Status;
      const hubState = ((await hub.api('GET', `/api/v1/nodes/${NODE}/containers`)).json as Array<{ Id: string; State: string }>).find((c) => c.Id === id)?.State;
      late.push(`blink-${i} (engine: ${engineState}, hub: ${hubState}, ${Date.now() - started} ms)`);
    }
  }
  assert.deepEqual(late, [], `not shown as exited within a second: ${late.join(', ')}`);
  await waitSectionsEqual(hub, NODE, engine, 2_000);
});

test('a container connected to a network is listed with it (the event is a network event)', { timeout: 30_000 }, async () => {
  const net = await engineRequest(engine.socketPath, 'POST', '/networks/create', { Name: 'conn-net' });
  assert.equal(net.status, 201);
  const id = await runContainer(engine, { name: 'conn-c' });
  const networksOf = async (): Promise<string[]> => {
    const list = (await hub.api('GET', `/api/v1/nodes/${NODE}/containers`)).json as Array<{ Id: string; NetworkSettings?: { Networks?: Record<string, unknown> } }>;
    return Object.keys(list.find((c) => c.Id === id)?.NetworkSettings?.Networks ?? {});
  };
  await waitFor(async () => (await networksOf()).length > 0, 2_000, 'conn-c in the hub');
  assert.equal((await engineRequest(engine.socketPath, 'POST', '/networks/conn-net/connect', { Container: id })).status, 200);
  await waitFor(async () => (await networksOf()).includes('conn-net'), 1_000, 'conn-c listed on conn-net in the hub', 10);
  assert.equal((await engineRequest(engine.socketPath, 'POST', '/networks/conn-net/disconnect', { Container: id })).status, 200);
  await waitFor(async () => !(await networksOf()).includes('conn-net'), 1_000, 'conn-c no longer listed on conn-net', 10);
});
