/**
 * The agent launcher's crash cases (issue 16): a real hub started with a release key, a real
 * `dockfleet agent` process (the launcher and the agent it runs) beside a private engine, releases
 * built from this checkout. Old versions are pruned after each kept upgrade; a launcher SIGKILLed
 * while a new version is on trial goes back to the old one when started again, and says why; a
 * version directory deleted by hand is said in one line, and the version before it runs instead.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateReleaseKey } from '../src/lib/release-keys.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { buildRelease, cannotConnect, publishRelease } from './support/release-builder.ts';

/** Long enough that the bad version is still on trial when the test kills its launcher. */
const TRIAL_MS = 120_000;
const VERSIONS = ['0.0.1-v1', '0.0.2-v2', '0.0.3-v3'] as const;
const BAD = '0.0.4-bad';

let work: string;
let engines: TestEngine[] = [];
let hub: TestHub;
let agent: DockfleetProcess;
let stateDir: string;
let agentArgs: string[];
const releaseKey = generateReleaseKey();

function startAgent(extra: string[] = []): DockfleetProcess {
  return spawnDockfleet([...agentArgs, ...extra], { DOCKFLEET_UPGRADE_TRIAL_MS: String(TRIAL_MS) });
}

async function nodeView(): Promise<{ status: string; agentVersion: string | null }> {
  const res = await hub.api('GET', '/api/v1/nodes');
  return (res.json as Array<{ name: string; status: string; agentVersion: string | null }>).find((n) => n.name === 'la1')!;
}

async function installed(): Promise<string[]> {
  return (await readdir(join(stateDir, 'versions')).catch(() => [] as string[])).sort();
}

async function json(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(stateDir, file), 'utf8')) as Record<string, unknown>;
}

/** The pid and command line of the one agent the launcher runs now. */
async function child(): Promise<{ pid: number; cmdline: string }> {
  const children = (await readFile(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8')).trim().split(/\s+/);
  assert.equal(children.length, 1, 'the launcher runs one agent');
  return { pid: Number(children[0]), cmdline: (await readFile(`/proc/${children[0]}/cmdline`, 'utf8')).replaceAll('\0', ' ') };
}

async function upgrade(to: string, wait: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(['agents', 'upgrade', '--to', to, ...(wait ? ['--wait'] : []), '--data', hub.dataDir]);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-launcher-'));
  const keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  engines = await startEngines(1, { prefix: 'launcher', importImage: false });
  process.env.DOCKFLEET_RELEASE_KEY = releaseKey.publicKey;
  hub = await startTestHub();
  delete process.env.DOCKFLEET_RELEASE_KEY;
  stateDir = join(work, 'agent-state');
  agentArgs = ['agent', '--hub', hub.url, '--state', stateDir, '--docker', engines[0]!.dockerHost, '--policy', join(work, 'no-policy.json')];
  agent = startAgent(['--code', await mintCode(hub, 'la1')]);
  for (const version of VERSIONS) await publishRelease(hub.dataDir, keyFile, await buildRelease(work, version));
  await publishRelease(hub.dataDir, keyFile, await buildRelease(work, BAD, cannotConnect));
  await agent.waitForLine(/agent la1 connected/, 60_000);
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the agent launcher', { timeout: 300_000 }, () => {
  test('after each kept upgrade, versions older than the one it replaced are removed', async () => {
    const expected = [[VERSIONS[0]], [VERSIONS[0], VERSIONS[1]], [VERSIONS[1], VERSIONS[2]]];
    for (const [i, version] of VERSIONS.entries()) {
      const res = await upgrade(version, true);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      assert.deepEqual(await nodeView().then((n) => [n.status, n.agentVersion]), ['online', version]);
      await waitFor(async () => JSON.stringify(await installed()) === JSON.stringify(expected[i]), 10_000, `versions/ holding ${expected[i]!.join(', ')}`).catch(async (err: Error) => {
        throw new Error(`${err.message}; it holds ${(await installed()).join(', ')}`);
      });
    }
    assert.deepEqual(await json('current.json'), { version: VERSIONS[2], previous: VERSIONS[1] });
    assert.match((await child()).cmdline, new RegExp(`versions/${VERSIONS[2]}/bin/dockfleet\\.js agent`));
  });

  test('the launcher SIGKILLed while a new version is on trial: started again, it goes back to the old version and says why', async () => {
    const res = await upgrade(BAD, false);
    assert.equal(res.code, 0, res.stderr);
    // On trial: current.json names the bad version, the launcher runs it, upgrade.json is unsettled.
    const onTrial = await waitFor(
      async () => {
        const c = await child().catch(() => null);
        return c?.cmdline.includes(`versions/${BAD}/bin/dockfleet.js agent`) ? c : null;
      },
      30_000,
      'the bad version on trial',
    );
    assert.equal((await json('current.json')).version, BAD);
    assert.equal((await json('upgrade.json')).to, BAD);
    agent.signal('SIGKILL');
    assert.equal((await agent.exited).signal, 'SIGKILL');
    // The agent it ran stops by itself once its launcher is gone.
    // (A zombie counts as gone: in a container, pid 1 may not reap what it inherits.)
    await waitFor(async () => !/^\d+ \(.*\) [^Z]/.test((await readFile(`/proc/${onTrial.pid}/stat`, 'utf8').catch(() => '')) as string), 15_000, 'the orphaned agent to exit');
    assert.equal((await json('upgrade.json')).to, BAD, 'the trial was left unsettled');

    agent = startAgent();
    await agent.waitForLine(/agent la1 connected/, 60_000);
    assert.deepEqual(await nodeView().then((n) => [n.status, n.agentVersion]), ['online', VERSIONS[2]]);
    assert.match((await child()).cmdline, new RegExp(`versions/${VERSIONS[2]}/bin/dockfleet\\.js agent`));
    const result = await json('upgrade-result.json');
    assert.deepEqual([result.from, result.to, result.ok, result.reason], [VERSIONS[2], BAD, false, 'the launcher stopped while the new version was on trial']);
    assert.deepEqual(await json('upgrade.json'), {});
    // The rollback restores the old version's own fallback too.
    assert.deepEqual(await json('current.json'), { version: VERSIONS[2], previous: VERSIONS[1] });
    // The hub's rollout ends failed, with the reason the old agent reports.
    const rollout = await waitFor(
      async () => {
        const list = (await hub.api('GET', '/api/v1/agent-upgrades')).json as Array<{ to: string; state: string; nodes: Array<{ reason: string | null }> }>;
        return list[0]?.to === BAD && list[0].state !== 'running' ? list[0] : null;
      },
      30_000,
      'the rollout to finish',
    );
    assert.equal(rollout.state, 'failed');
    assert.equal(rollout.nodes[0]!.reason, `back on ${VERSIONS[2]}: the launcher stopped while the new version was on trial`);
  });

  test('a version directory deleted by hand: one clear line, and the version before it runs', async () => {
    await agent.stop();
    await rm(join(stateDir, 'versions', VERSIONS[2]), { recursive: true });
    agent = startAgent();
    await agent.waitForLine(/agent la1 connected/, 60_000);
    const said = agent
      .stderr()
      .split('\n')
      .filter((l) => l.includes(' is missing ('));
    assert.equal(said.length, 1, agent.stderr());
    const line = JSON.parse(said[0]!) as { level: number; msg: string };
    assert.equal(line.msg, `version ${VERSIONS[2]} is missing (${join(stateDir, 'versions', VERSIONS[2])} was removed); running ${VERSIONS[1]} instead`);
    assert.ok(line.level >= 50, 'said as an error');
    assert.deepEqual(await nodeView().then((n) => [n.status, n.agentVersion]), ['online', VERSIONS[1]]);
    assert.match((await child()).cmdline, new RegExp(`versions/${VERSIONS[1]}/bin/dockfleet\\.js agent`));
    assert.deepEqual(await json('current.json'), { version: VERSIONS[1], previous: null });
  });
});
