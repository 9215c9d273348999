/**
 * Durable agent upgrade rollouts (issue 16): a rollout over two real `dockfleet agent` processes,
 * one at a time, survives a hub restart in the middle of the first node's trial. The hub (in this
 * process) stops while the first agent runs the new version on trial and starts again on the same
 * data dir and port; the rollout resumes: the first node counts as done when its agent comes back
 * on the new version, the second wave runs, and both nodes' agent-upgrade jobs succeed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateReleaseKey } from '../src/lib/release-keys.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { buildRelease, publishRelease } from './support/release-builder.ts';

const TRIAL_MS = 30_000;
const VERSION = '0.0.0-durable';
const NODES = ['dur1', 'dur2'];

let work: string;
let engines: TestEngine[] = [];
let hub: TestHub;
const agents: DockfleetProcess[] = [];
const releaseKey = generateReleaseKey();

async function startHub(opts: { dataDir?: string; port?: number } = {}): Promise<TestHub> {
  process.env.DOCKFLEET_RELEASE_KEY = releaseKey.publicKey;
  try {
    return await startTestHub(opts);
  } finally {
    delete process.env.DOCKFLEET_RELEASE_KEY;
  }
}

type Rollout = { id: string; state: string; nodes: Array<{ node: string; state: string; wave: number; reason: string | null }> };

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-upgrade-durable-'));
  const keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  engines = await startEngines(2, { prefix: 'updur', importImage: false });
  hub = await startHub();
  for (const [i, name] of NODES.entries()) {
    const code = await mintCode(hub, name);
    const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', join(work, `state-${name}`), '--docker', engines[i]!.dockerHost, '--policy', join(work, 'no-policy.json')], {
      DOCKFLEET_UPGRADE_TRIAL_MS: String(TRIAL_MS),
    });
    agents.push(agent);
    await agent.waitForLine(new RegExp(`agent ${name} connected`), 60_000);
  }
  await publishRelease(hub.dataDir, keyFile, await buildRelease(work, VERSION));
});

after(async () => {
  for (const agent of agents) await agent.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

test('a rollout resumes after a hub restart during the first node trial, and both agent-upgrade jobs succeed', { timeout: 120_000 }, async () => {
  const started = await hub.api('POST', '/api/v1/agent-upgrades', { to: VERSION, parallel: 1, nodes: NODES });
  assert.equal(started.status, 202, JSON.stringify(started.json));
  const id = (started.json as Rollout).id;

  // The first node accepted the release and restarts into it: its trial is under way.
  await waitFor(
    async () => {
      const r = (await hub.api('GET', `/api/v1/agent-upgrades/${id}`)).json as Rollout;
      return r.nodes[0]?.state === 'restarting';
    },
    60_000,
    'the first node restarting',
  );
  const port = Number(new URL(hub.url).port);
  const dataDir = hub.dataDir;
  await hub.stop({ keepData: true });
  // The new version starts while the hub is away: it links once the hub is back, within its trial.
  hub = await startHub({ dataDir, port });

  const done = await waitFor(
    async () => {
      const r = (await hub.api('GET', `/api/v1/agent-upgrades/${id}`)).json as Rollout;
      return r.state !== 'running' ? r : null;
    },
    90_000,
    'the rollout finishing after the restart',
  );
  assert.equal(done.state, 'succeeded', JSON.stringify(done.nodes));
  assert.deepEqual(
    done.nodes.map((n) => [n.node, n.wave, n.state]),
    [
      ['dur1', 1, 'succeeded'],
      ['dur2', 2, 'succeeded'],
    ],
  );
  const nodes = (await hub.api('GET', '/api/v1/nodes')).json as Array<{ name: string; agentVersion: string | null }>;
  for (const name of NODES) assert.equal(nodes.find((n) => n.name === name)?.agentVersion, VERSION, name);

  const jobs = (await hub.api('GET', '/api/v1/jobs')).json as Array<{ kind: string; node: string; state: string; error: string | null }>;
  const upgrades = jobs.filter((j) => j.kind === 'agent-upgrade');
  assert.deepEqual(upgrades.map((j) => [j.node, j.state]).sort(), [
    ['dur1', 'succeeded'],
    ['dur2', 'succeeded'],
  ]);

  // The CLI lists them where it lists every job.
  const cli = spawnDockfleet(['jobs', '--data', dataDir]);
  const { code } = await cli.exited;
  assert.equal(code, 0, cli.stderr());
  assert.equal(cli.stdout().match(/agent-upgrade/g)?.length, 2, cli.stdout());
});
