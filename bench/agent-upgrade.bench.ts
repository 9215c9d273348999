/**
 * Agent upgrade rollout at fleet scale (issue 16): 100 simulated agents (bench/agent-simulator.ts
 * with its upgrade endpoint: each verifies the release with the pinned key like a real agent, then
 * restarts for a fixed time and comes back on the new version) upgraded by a real in-process hub,
 * `--parallel 10` and then `--parallel 100`. Beside them, in the same run, the baselines: the same
 * 100 agents restarting (same fixed time) with no upgrade, all at once and in waves of 10: the
 * part of a rollout that is only reconnecting.
 *
 *   node --import tsx bench/agent-upgrade.bench.ts
 *
 * BENCH_AGENTS (100), BENCH_RESTART_MS (1000: the simulated restart). Writes
 * bench/results/agent-upgrade.json.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { generateReleaseKey, signRelease } from '../src/lib/release-keys.ts';
import { startTestHub, type TestHub } from '../test/support/hub-fixture.ts';
import { startSimulatedFleet, type SimulatedFleet } from './agent-simulator.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { sleep } from './lib/proc.ts';

const run = promisify(execFile);
const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'agent-upgrade.json');
const AGENTS = envInt('BENCH_AGENTS', 100);
const RESTART_MS = envInt('BENCH_RESTART_MS', 1_000);

type Rollout = { id: string; state: string; nodes: Array<{ node: string; state: string; reason: string | null }> };

/** A release of this checkout's code (src, bin, package.json, lockfile) as `version`: a real-sized package. */
async function packRelease(work: string, version: string): Promise<Buffer> {
  const dir = join(work, `build-${version}`);
  await mkdir(dir);
  for (const part of ['src', 'bin', 'package.json', 'package-lock.json']) await cp(join(ROOT, part), join(dir, part), { recursive: true });
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string };
  pkg.version = version;
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const out = join(work, `${version}.tgz`);
  await run('tar', ['-czf', out, '-C', dir, 'src', 'bin', 'package.json', 'package-lock.json']);
  return readFile(out);
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Restarts every node with no upgrade, `parallel` at a time (each wave waits for its nodes to be back). */
async function restartBaseline(fleet: SimulatedFleet, parallel: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < fleet.nodes.length; i += parallel) {
    const wave = fleet.nodes.slice(i, i + parallel);
    fleet.restart(wave, RESTART_MS);
    await waitUntil(() => fleet.connectedCount() < fleet.nodes.length, 10_000, 'the wave to drop');
    await waitUntil(() => fleet.connectedCount() === fleet.nodes.length, 60_000, 'the wave to be back');
  }
  return performance.now() - started;
}

async function rollout(hub: TestHub, to: string, parallel: number): Promise<{ ms: number; rollout: Rollout }> {
  const started = performance.now();
  const res = await hub.api('POST', '/api/v1/agent-upgrades', { to, parallel });
  if (res.status !== 202) throw new Error(`starting the rollout: ${res.status} ${JSON.stringify(res.json)}`);
  const id = (res.json as Rollout).id;
  let done: Rollout | null = null;
  await waitUntil(
    async () => {
      const r = (await hub.api('GET', `/api/v1/agent-upgrades/${id}`)).json as Rollout;
      if (r.state !== 'running') done = r;
      return done !== null;
    },
    AGENTS * 5_000,
    `rollout to ${to}`,
  );
  return { ms: performance.now() - started, rollout: done! };
}

runBench('agent-upgrade', async () => {
  const work = await mkdtemp(join(tmpdir(), 'dockfleet-bench-upgrade-'));
  const key = generateReleaseKey();
  process.env.DOCKFLEET_RELEASE_KEY = key.publicKey;
  const hub = await startTestHub();
  delete process.env.DOCKFLEET_RELEASE_KEY;
  let fleet: SimulatedFleet | null = null;
  try {
    const versions = ['0.0.1-bench', '0.0.2-bench'];
    let packageBytes = 0;
    for (const version of versions) {
      const pkg = await packRelease(work, version);
      packageBytes = pkg.length;
      const added = await hub.api('POST', '/api/v1/releases', { package: pkg.toString('base64'), signature: signRelease(pkg, version, key.privateKeyPem) });
      if (added.status !== 201) throw new Error(`adding release ${version}: ${added.status} ${JSON.stringify(added.json)}`);
    }
    benchLog(`releases added (${(packageBytes / 1024).toFixed(0)} KB each); connecting ${AGENTS} simulated agents`);
    fleet = await startSimulatedFleet({ hubUrl: hub.url, caPem: hub.caPem, token: hub.token, count: AGENTS, namePrefix: 'upg', upgrade: { releaseKey: key.publicKey, restartMs: RESTART_MS } });
    const f = fleet;
    await waitUntil(() => f.connectedCount() === AGENTS, 120_000, 'all agents connected');

    benchLog('baseline: restart only, waves of 10');
    const baseline10 = await restartBaseline(fleet, 10);
    benchLog(`  ${baseline10.toFixed(0)} ms; baseline: restart only, all ${AGENTS} at once`);
    const baseline100 = await restartBaseline(fleet, AGENTS);
    benchLog(`  ${baseline100.toFixed(0)} ms; rollout --parallel 10`);
    const p10 = await rollout(hub, versions[0]!, 10);
    benchLog(`  ${p10.rollout.state} in ${p10.ms.toFixed(0)} ms; rollout --parallel ${AGENTS}`);
    const p100 = await rollout(hub, versions[1]!, AGENTS);
    benchLog(`  ${p100.rollout.state} in ${p100.ms.toFixed(0)} ms`);
    for (const r of [p10, p100]) {
      const bad = r.rollout.nodes.filter((n) => n.state !== 'succeeded');
      if (bad.length > 0) throw new Error(`${bad.length} nodes did not upgrade: ${JSON.stringify(bad.slice(0, 3))}`);
    }
    const onNew = fleet.nodes.filter((n) => fleet?.versionOf(n) === versions[1]).length;
    const jobs = (await hub.api('GET', '/api/v1/jobs?limit=1000')).json as Array<{ kind: string; state: string }>;
    const upgradeJobs = jobs.filter((j) => j.kind === 'agent-upgrade');

    const out = {
      bench: 'agent-upgrade',
      at: new Date().toISOString(),
      machine: machineFacts(),
      agents: AGENTS,
      restartMs: RESTART_MS,
      packageBytes,
      baseline: {
        what: 'the same agents restarting (same fixed restart time) with no upgrade: only the reconnects',
        waves10Ms: Math.round(baseline10),
        allAtOnceMs: Math.round(baseline100),
      },
      rollouts: {
        parallel10: { ms: Math.round(p10.ms), waves: Math.ceil(AGENTS / 10), state: p10.rollout.state },
        parallel100: { ms: Math.round(p100.ms), waves: 1, state: p100.rollout.state },
      },
      overBaseline: { parallel10: Number((p10.ms / baseline10).toFixed(2)), parallel100: Number((p100.ms / baseline100).toFixed(2)) },
      agentsOnNewVersion: onNew,
      agentUpgradeJobs: { total: upgradeJobs.length, succeeded: upgradeJobs.filter((j) => j.state === 'succeeded').length },
    };
    await mkdir(dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
    benchLog(`wrote ${RESULTS}`);
  } finally {
    await fleet?.stop();
    await hub.stop();
    await rm(work, { recursive: true, force: true });
  }
});
