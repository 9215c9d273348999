/** A node's policy summary, agent → hub → API: the agent summarises its policy file (sections
 * on/off, the allow flags, the bind directories the file lists, never the file's own path) and
 * sends it on its inventory stream; `GET /api/v1/nodes` and `/api/v1/nodes/NAME` carry it as
 * `policy`, also after the node goes offline. A real hub, a real agent process, a real engine. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadPolicy } from '../src/agent/policy/policy-file.ts';
import { summarisePolicy } from '../src/agent/policy/policy-summary.ts';
import { policySummary } from '../src/protocol/policy-summary.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const STRICT = {
  sections: { ping: true, version: true, info: true, events: true, containers: true, images: true, volumes: true, networks: true, archive: true },
  allow: { bindMounts: ['/srv/shop-data'], capabilities: ['NET_ADMIN'] },
};

let dir: string;
let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let policyPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-polsum-'));
  policyPath = join(dir, 'secret-place-policy.json');
  await writeFile(policyPath, JSON.stringify(STRICT));
  [engine] = (await startEngines(1, { prefix: 'polsum' })) as [TestEngine];
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, 'strict-01'), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', policyPath]);
  await agent.waitForLine(/agent strict-01 connected/);
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  await rm(dir, { recursive: true, force: true });
});

test('the summary of a policy file: its sections and allow flags, no path of its own', async () => {
  const summary = summarisePolicy(await loadPolicy(policyPath));
  assert.equal(policySummary.safeParse(summary).success, true);
  assert.equal(summary.custom, true);
  assert.equal(summary.sections.archive, true);
  assert.equal(summary.sections.exec, false, 'a sections list is complete: exec is off when not listed');
  assert.equal(summary.sections.volumeFiles, false);
  assert.equal(summary.sections.ingress, false);
  assert.deepEqual(summary.allow.bindMounts, ['/srv/shop-data']);
  assert.deepEqual(summary.allow.capabilities, ['NET_ADMIN']);
  assert.equal(summary.allow.privileged, false);
  assert.ok(!JSON.stringify(summary).includes('secret-place'), 'the policy file path is not in the summary');
});

test('the default policy: custom false, exec and ingress on, archive and volume files off, any bind path', async () => {
  const summary = summarisePolicy(await loadPolicy(join(dir, 'missing.json')));
  assert.equal(summary.custom, false);
  assert.equal(summary.sections.exec, true);
  assert.equal(summary.sections.ingress, true);
  assert.equal(summary.sections.archive, false);
  assert.equal(summary.sections.volumeFiles, false);
  assert.equal(summary.allow.bindMounts, null);
});

test('the hub shows what the agent reported, in the node list and the node view, and keeps it offline', async () => {
  const view = await waitFor(
    async () => {
      const res = await hub!.api('GET', '/api/v1/nodes/strict-01');
      return res.json?.policy ? res.json : null;
    },
    10_000,
    'the node view to carry the policy',
  );
  assert.deepEqual(view.policy, summarisePolicy(await loadPolicy(policyPath)));
  const list = (await hub!.api('GET', '/api/v1/nodes')).json as Array<{ name: string; policy: unknown }>;
  assert.deepEqual(list.find((n) => n.name === 'strict-01')?.policy, view.policy);
  assert.ok(!JSON.stringify(list).includes('secret-place'), 'the policy file path never reaches the API');

  await agent!.stop();
  await waitFor(async () => (await nodeStatus(hub!, 'strict-01')) === 'offline', 15_000, 'the node to go offline');
  const offline = (await hub!.api('GET', '/api/v1/nodes/strict-01')).json;
  assert.deepEqual(offline.policy, view.policy, 'the last reported policy stays while the node is offline');
});
