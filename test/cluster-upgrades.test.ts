/**
 * Agent upgrades across hub replicas (issue 17): three in-process replicas on a private
 * PostgreSQL and nats-server, started with a release key; one real `dockfleet agent` process
 * (launcher and agent, pinned to that key) linked to one of them; releases built from this checkout.
 * - A rollout started on a replica that does not hold the agent succeeds: the release goes through
 *   the holder, the agent comes back (on whichever replica) on the new version, and every
 *   replica's node view shows that version.
 * - Only one replica drives a rollout: the agent is frozen while the release is being handed to
 *   it, every replica stops with the rollout unfinished, two replicas start again on the same
 *   database and both resume it — it is driven once: the agent stages and starts the release
 *   once, and the rollout has one agent-upgrade job for the node.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateReleaseKey } from '../src/lib/release-keys.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { buildRelease, publishRelease } from './support/release-builder.ts';
import { REPLICA_TUNING, startReplicas, type Replicas } from './support/replicas.ts';
import { Writable } from 'node:stream';
import { createLogger } from '../src/lib/logger.ts';

const NODE = 'up-01';
const [V2, V3] = ['0.0.0-clup2', '0.0.0-clup3'];
const releaseKey = generateReleaseKey();
let work: string;
let cluster: Replicas;
let agent: DockfleetProcess | undefined;
/** Replicas started again by the second test (stopped here). */
const restarted: TestHub[] = [];

type Rollout = { id: string; state: string; nodes: Array<{ node: string; state: string; reason: string | null }> };

function holderOf(h: TestHub): string | null {
  const node = h.hub.registry.byName(NODE);
  const owner = node && h.replica ? h.replica.ownership.owner(node.id) : null;
  return owner?.state === 'held' ? owner.replica : null;
}

async function versionOn(h: TestHub): Promise<string | null> {
  const r = await h.api('GET', `/api/v1/nodes/${NODE}`);
  return r.status === 200 ? ((r.json as { agentVersion: string | null }).agentVersion ?? null) : null;
}

async function finished(h: TestHub, id: string, timeoutMs = 120_000): Promise<Rollout> {
  return waitFor(
    async () => {
      const r = await h.api('GET', `/api/v1/agent-upgrades/${id}`);
      return r.status === 200 && (r.json as Rollout).state !== 'running' ? (r.json as Rollout) : null;
    },
    timeoutMs,
    `rollout ${id} to finish`,
    100,
  );
}

function logSince(from: number): Array<{ msg?: string; version?: string; to?: string }> {
  return agent!
    .stderr()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; version?: string; to?: string });
}

function switches(version: string, from: number): { staged: number; started: number } {
  const log = logSince(from);
  return {
    staged: log.filter((r) => r.msg === 'release verified and installed; switching to it' && r.to === version).length,
    started: log.filter((r) => r.msg === 'agent started' && r.version === version).length,
  };
}

async function agentChild(): Promise<number> {
  const pid = agent!.pid;
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/);
  assert.equal(children.length, 1, 'the launcher runs one agent');
  return Number(children[0]);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-cluster-upgrades-'));
  process.env.DOCKFLEET_RELEASE_KEY = releaseKey.publicKey; // every replica's --release-key
  cluster = await startReplicas(3);
  const keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  // Each replica keeps its releases in its own DIR: the operator adds them to each.
  for (const version of [V2, V3]) {
    const pkg = await buildRelease(work, version);
    for (const h of cluster.hubs) await publishRelease(h.dataDir, keyFile, pkg);
  }
  const a = cluster.hubs[0]!;
  agent = spawnDockfleet(['agent', '--hub', a.url, '--code', await mintCode(a, NODE), '--state', join(work, 'state'), '--docker', NO_ENGINE, '--policy', join(work, 'no-policy.json')], {
    DOCKFLEET_UPGRADE_TRIAL_MS: '5000',
  });
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 60_000);
  await waitFor(() => cluster.hubs.every((h) => holderOf(h) === 'replica-a'), 10_000, 'every replica to see A hold the node');
  for (const h of cluster.hubs) await waitFor(async () => (await versionOn(h)) !== null, 10_000, 'every replica to show the agent version');
});

after(async () => {
  await agent?.stop();
  for (const h of restarted) await h.stop({ keepData: true }).catch(() => {});
  await cluster?.close();
  delete process.env.DOCKFLEET_RELEASE_KEY;
  await rm(work, { recursive: true, force: true });
});

test('a rollout started on B for the agent A holds succeeds, and every replica shows the new version', async () => {
  const b = cluster.hubs[1]!;
  const from = agent!.stderr().length;
  const started = await b.api('POST', '/api/v1/agent-upgrades', { to: V2, nodes: [NODE] });
  assert.equal(started.status, 202, JSON.stringify(started.json));
  const done = await finished(b, (started.json as Rollout).id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  assert.deepEqual(switches(V2, from), { staged: 1, started: 1 });
  for (const h of cluster.hubs) await waitFor(async () => (await versionOn(h)) === V2, 10_000, `${h.replica!.replicaId} to show ${V2}`);
});

test('two replicas started on a database with an unfinished rollout drive it once', async () => {
  const holder = holderOf(cluster.hubs[0]!);
  assert.ok(holder, 'someone holds the node');
  const driver = cluster.hubs.find((h) => h.replica!.replicaId !== holder)!;
  const from = agent!.stderr().length;
  // Frozen, the agent never answers: the rollout stays in `sending`.
  const child = await agentChild();
  process.kill(child, 'SIGSTOP');
  try {
    const started = await driver.api('POST', '/api/v1/agent-upgrades', { to: V3, nodes: [NODE] });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    const id = (started.json as Rollout).id;
    await waitFor(async () => ((await driver.api('GET', `/api/v1/agent-upgrades/${id}`)).json as Rollout).nodes[0]?.state === 'sending', 10_000, 'the node to be sending');
    // Every replica stops with the rollout unfinished (the driver first, so no call is left in flight).
    const order = [driver, ...cluster.hubs.filter((h) => h !== driver)];
    for (const h of order) await h.stop({ keepData: true });
    process.kill(child, 'SIGCONT');
    // Two replicas on the same database and data dirs: both would resume it at start; the lease lets one drive it.
    const logged: string[] = [];
    const log = createLogger('hub', { level: 'info', format: 'json' }, { stream: new Writable({ write: (c, _e, cb) => (logged.push(String(c)), cb()) }) });
    for (const [i, h] of cluster.hubs.slice(0, 2).entries()) {
      restarted.push(
        await startTestHub({
          log,
          store: cluster.storeUrl,
          cluster: { servers: cluster.nats.url, replicaId: `replica-${'ab'[i]}` },
          run: { clusterTuning: REPLICA_TUNING },
          dataDir: h.dataDir,
          port: Number(new URL(h.url).port), // where the agent's replica list points
        }),
      );
    }
    const done = await finished(restarted[0]!, id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    // Driven once: handed over once more (the frozen agent never had it), staged and started once.
    await new Promise((r) => setTimeout(r, 3_000)); // a second driver would hand it over again by now
    assert.deepEqual(switches(V3, from), { staged: 1, started: 1 });
    const resumed = logged
      .join('')
      .split('\n')
      .filter((l) => l.includes('"resuming agent upgrade rollout"') && l.includes(id));
    assert.equal(resumed.length, 1, `one replica drives the rollout, not both:\n${resumed.join('\n')}`);
    const jobs = (await restarted[1]!.api('GET', '/api/v1/jobs?limit=1000')).json as Array<{ kind: string; node: string; state: string }>;
    const upgrades = jobs.filter((j) => j.kind === 'agent-upgrade' && j.node === NODE);
    assert.equal(upgrades.length, 2, 'one agent-upgrade job per rollout for the node');
    for (const h of restarted) await waitFor(async () => (await versionOn(h)) === V3, 10_000, `${h.replica!.replicaId} to show ${V3}`);
  } finally {
    try {
      process.kill(child, 'SIGCONT');
    } catch {
      // switched to another process meanwhile
    }
  }
});
