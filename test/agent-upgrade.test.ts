/**
 * Signed, staged agent self-update (issue 16): a real hub started with a release key, a real
 * `dockfleet agent` process (its launcher and the agent it runs) beside a private engine, and two
 * releases built from this checkout: a good one, and a bad one that cannot reach the hub. The
 * agent moves to the good one, goes back to it by itself from the bad one, and refuses a release
 * signed by another key even when the hub hands it over.
 */
import assert from 'node:assert/strict';
import { cp, lstat, mkdtemp, readFile, readdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateReleaseKey, signRelease } from '../src/lib/release-keys.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { buildRelease as buildReleaseIn, pinOtherVersion } from './support/release-builder.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TRIAL_MS = 8_000;
// shlex is a run-time package the agent never loads: a copy at a made-up version runs as well as the real one.
const SHLEX = (JSON.parse(await readFile(join(ROOT, 'node_modules', 'shlex', 'package.json'), 'utf8')) as { version: string }).version;
const RUNNING_VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let engines: TestEngine[] = [];
let hub: TestHub;
let agent: DockfleetProcess;
let stateDir: string;
const releaseKey = generateReleaseKey();
let keyFile: string;

/** A release package built from this checkout: its code, with `version` in package.json and `patch` applied. */
function buildRelease(version: string, patch?: (dir: string) => Promise<void>, opts?: { withDependencies?: boolean }): Promise<string> {
  return buildReleaseIn(work, version, patch, opts);
}

async function publish(pkg: string): Promise<void> {
  const signed = await cli(['release', 'sign', pkg, '--key', keyFile]);
  assert.equal(signed.code, 0, signed.stderr);
  const added = await cli(['release', 'add', pkg]);
  assert.equal(added.code, 0, added.stderr);
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet([...args, '--data', hub.dataDir]);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

async function nodeView(name: string): Promise<{ status: string; agentVersion: string | null }> {
  const res = await hub.api('GET', '/api/v1/nodes');
  return (res.json as Array<{ name: string; status: string; agentVersion: string | null }>).find((n) => n.name === name)!;
}

/** The command line of the agent the launcher runs now. */
async function childCommandLine(): Promise<string> {
  const children = (await readFile(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8')).trim().split(/\s+/);
  assert.equal(children.length, 1, 'the launcher runs one agent');
  return (await readFile(`/proc/${children[0]}/cmdline`, 'utf8')).replaceAll('\0', ' ');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-upgrade-'));
  keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  engines = await startEngines(1, { prefix: 'upgrade', importImage: false });
  process.env.DOCKFLEET_RELEASE_KEY = releaseKey.publicKey;
  hub = await startTestHub();
  delete process.env.DOCKFLEET_RELEASE_KEY;
  stateDir = join(work, 'agent-state');
  const code = await mintCode(hub, 'up1');
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', stateDir, '--docker', engines[0]!.dockerHost, '--policy', join(work, 'no-policy.json')], {
    DOCKFLEET_UPGRADE_TRIAL_MS: String(TRIAL_MS),
  });
  await agent.waitForLine(/agent up1 connected/, 60_000);
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('signed, staged agent self-update', { timeout: 300_000 }, () => {
  let good: string;
  let bad: string;

  before(async () => {
    good = await buildRelease('0.0.0-good');
    // The bad release cannot connect: it dials a port where no hub listens.
    bad = await buildRelease('0.0.0-bad', async (dir) => {
      const file = join(dir, 'src', 'agent', 'hub-channel.ts');
      const text = await readFile(file, 'utf8');
      assert.ok(text.includes('await dialHub(opts.hubUrl, '));
      await writeFile(file, text.replace('await dialHub(opts.hubUrl, ', "await dialHub(new URL('https://127.0.0.1:9/'), "));
    });
    for (const pkg of [good, bad]) await publish(pkg);
  });

  test('the agent pinned the release key at enrollment and reports its version', async () => {
    assert.equal((await readFile(join(stateDir, 'release-key.pub'), 'utf8')).trim(), releaseKey.publicKey);
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', RUNNING_VERSION]);
    const list = await hub.api('GET', '/api/v1/releases');
    assert.deepEqual((list.json as Array<{ version: string }>).map((r) => r.version).sort(), ['0.0.0-bad', '0.0.0-good']);
  });

  test('upgrade to a good release: the agent restarts into it and comes back on it', async () => {
    const from = agent.lineCount();
    const res = await cli(['agents', 'upgrade', '--to', '0.0.0-good', '--parallel', '1', '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /up1\s+succeeded \(from 0\.1\.0\)|up1\s+succeeded \(from /);
    await agent.waitForLine(/agent up1 connected/, 30_000, from);
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-good']);
    assert.match(await childCommandLine(), new RegExp(`${stateDir}/versions/0\\.0\\.0-good/bin/dockfleet\\.js agent`));
    const result = JSON.parse(await readFile(join(stateDir, 'upgrade-result.json'), 'utf8'));
    assert.equal(result.ok, true);
    const rollouts = await hub.api('GET', '/api/v1/agent-upgrades');
    assert.equal(rollouts.json[0].state, 'succeeded');
  });

  test('upgrade to a release that cannot connect: the launcher goes back by itself and the upgrade fails saying why', async () => {
    const started = Date.now();
    const res = await cli(['agents', 'upgrade', '--to', '0.0.0-bad', '--wait']);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, /did not reconnect within 8 s/);
    assert.ok(Date.now() - started >= TRIAL_MS, 'the bad version had its trial');
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-good']);
    assert.match(await childCommandLine(), /versions\/0\.0\.0-good\/bin\/dockfleet\.js agent/);
    const result = JSON.parse(await readFile(join(stateDir, 'upgrade-result.json'), 'utf8'));
    assert.deepEqual([result.from, result.to, result.ok], ['0.0.0-good', '0.0.0-bad', false]);
    assert.equal(JSON.parse(await readFile(join(stateDir, 'current.json'), 'utf8')).version, '0.0.0-good');
  });

  test('a release signed by another key: the hub refuses it, and an agent handed it anyway installs nothing', async () => {
    const evil = await buildRelease('0.0.0-evil');
    const otherKey = generateReleaseKey();
    const signature = signRelease(await readFile(evil), '0.0.0-evil', otherKey.privateKeyPem);
    await writeFile(`${evil}.sig`, JSON.stringify(signature));
    const added = await cli(['release', 'add', evil]);
    assert.equal(added.code, 1);
    assert.match(added.stderr, /\[release_unsigned\]/);
    // A compromised hub offers it anyway: straight into its store.
    await cp(evil, join(hub.dataDir, 'releases', '0.0.0-evil.tgz'));
    await writeFile(join(hub.dataDir, 'releases', '0.0.0-evil.sig.json'), JSON.stringify(signature));
    const res = await cli(['agents', 'upgrade', '--to', '0.0.0-evil', '--wait']);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, /not signed by the pinned release key/);
    assert.deepEqual((await readdir(join(stateDir, 'versions'))).sort(), ['0.0.0-bad', '0.0.0-good']);
    await assert.rejects(stat(join(stateDir, 'versions', '0.0.0-evil')));
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-good']);
  });

  test('a release whose lock pins another version of a run-time package, without it: refused, saying what differs', async () => {
    await publish(await buildRelease('0.0.0-newdeps', pinOtherVersion('shlex', '3.0.99', false)));
    const res = await cli(['agents', 'upgrade', '--to', '0.0.0-newdeps', '--wait']);
    assert.equal(res.code, 1, res.stdout);
    assert.match(res.stderr, new RegExp(`shlex 3\\.0\\.99 \\(found ${SHLEX.replaceAll('.', '\\.')}\\)`));
    assert.match(res.stderr, /release pack --with-dependencies/);
    await assert.rejects(stat(join(stateDir, 'versions', '0.0.0-newdeps')));
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-good']);
  });

  test('the same change carried in the release: the agent runs it with its own node_modules', { timeout: 180_000 }, async () => {
    await publish(await buildRelease('0.0.0-bundled', pinOtherVersion('shlex', '3.0.99', true), { withDependencies: true }));
    const from = agent.lineCount();
    const res = await cli(['agents', 'upgrade', '--to', '0.0.0-bundled', '--wait']);
    assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
    await agent.waitForLine(/agent up1 connected/, 30_000, from);
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-bundled']);
    assert.match(await childCommandLine(), /versions\/0\.0\.0-bundled\/bin\/dockfleet\.js agent/);
    const modules = join(stateDir, 'versions', '0.0.0-bundled', 'node_modules');
    const st = await lstat(modules);
    assert.ok(st.isDirectory() && !st.isSymbolicLink(), 'the release runs with the node_modules it carried');
    assert.equal(JSON.parse(await readFile(join(modules, 'shlex', 'package.json'), 'utf8')).version, '3.0.99');
  });

  test('releases that borrow the carried node_modules keep the version that carried it from being pruned', { timeout: 180_000 }, async () => {
    for (const version of ['0.0.0-borrow1', '0.0.0-borrow2']) {
      await publish(await buildRelease(version, pinOtherVersion('shlex', '3.0.99', false)));
      const res = await cli(['agents', 'upgrade', '--to', version, '--wait']);
      assert.equal(res.code, 0, `${res.stdout}\n${res.stderr}`);
      // The launcher says so on stderr (its log), right before it prunes.
      const kept = new RegExp(`"version":"${version.replaceAll('.', '\\.')}".*upgrade kept`);
      await waitFor(() => kept.test(agent.stderr()), 30_000, `${version} kept`);
      assert.equal(await realpath(join(stateDir, 'versions', version, 'node_modules')), await realpath(join(stateDir, 'versions', '0.0.0-bundled', 'node_modules')));
    }
    // The launcher prunes right after it keeps a version: 0.0.0-good went with the first, and the
    // second would take 0.0.0-bundled, whose node_modules both borrow.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.deepEqual((await readdir(join(stateDir, 'versions'))).filter((v) => !v.includes('.partial-')).sort(), ['0.0.0-borrow1', '0.0.0-borrow2', '0.0.0-bundled']);
    assert.deepEqual(await nodeView('up1').then((n) => [n.status, n.agentVersion]), ['online', '0.0.0-borrow2']);
  });
});
