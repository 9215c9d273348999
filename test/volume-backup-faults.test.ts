/**
 * Volume backups when the world fails (issue 14's fault list): a private engine, a real hub, a
 * real `dockfleet agent` process and Debian's restic. A repository on a small tmpfs the backup
 * overflows, a restore into a volume whose disk is too small, a repository server that refuses
 * connections, one that accepts and never answers, and a repository path that is not there. Each
 * job fails in words within a bounded time, nothing claims success, and a container labelled
 * dockfleet.backup.stop runs again. The test mounts its tmpfs itself (tests run as root) and
 * unmounts them in cleanup, also when a test fails.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const execFileP = promisify(execFile);
const NODE = 'faulty-01';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let dir = '';
let repoDir = '';
const mounts: string[] = [];

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const p = spawnDockfleet([...args, '--data', hub!.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr(), ms: Date.now() - t0 };
}

async function mountTmpfs(at: string, size: string): Promise<void> {
  await mkdir(at, { recursive: true });
  await execFileP('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', at]);
  mounts.push(at);
}

async function createVolume(name: string): Promise<string> {
  const res = await engineRequest(engine!.socketPath, 'POST', '/volumes/create', { Name: name });
  assert.equal(res.status, 201, res.text);
  return String(res.json.Mountpoint);
}

async function running(id: string): Promise<boolean> {
  const res = await engineRequest(engine!.socketPath, 'GET', `/containers/${id}/json`);
  return res.json?.State?.Running === true;
}

/** The engine's events for one container between two instants (seconds). */
async function containerActions(id: string, since: number, until: number): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ container: [id], type: ['container'] }));
  const res = await engineRequest(engine!.socketPath, 'GET', `/events?since=${since}&until=${until}&filters=${filters}`);
  return res.text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => String(JSON.parse(l).Action));
}

/** A backup of `volume` to `repo` that must fail: the stop-labelled container was stopped and runs again. */
async function failingBackup(volume: string, repo: string, containerId: string): Promise<{ stderr: string; ms: number }> {
  const since = Math.floor(Date.now() / 1000) - 1;
  const out = await cli('volume', 'backup', NODE, volume, '--repo', repo, '--wait');
  const until = Math.ceil(Date.now() / 1000) + 1;
  assert.equal(out.code, 1, `the backup fails: ${out.stdout}${out.stderr}`);
  assert.doesNotMatch(out.stdout, /^snapshot /m, 'no snapshot is claimed');
  assert.ok(await running(containerId), 'the stop-labelled container runs again');
  const actions = await containerActions(containerId, since, until);
  assert.ok(actions.includes('stop') && actions.lastIndexOf('start') > actions.indexOf('stop'), `stopped, then started: ${actions.join(',')}`);
  return { stderr: out.stderr, ms: out.ms };
}

describe('volume backup faults', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  let appId = '';

  before(async () => {
    [engine] = (await startEngines(1, { prefix: 'volfault' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-volfault-'));
    repoDir = join(dir, 'repos');
    await mkdir(repoDir);
    const policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { custody: 'host-only', repository: join(repoDir, 'roomy'), repositoryPaths: [repoDir] } }));
    hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
    const code = await mintCode(hub, NODE);
    agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', policyFile]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    const mount = await createVolume('bulky');
    // Incompressible and unique: restic cannot make 24 MiB small.
    for (let i = 0; i < 3; i++) await writeFile(join(mount, `part-${i}.bin`), randomBytes(8 * 1024 * 1024));
    appId = await runContainer(engine, { name: 'bulky-app', hostConfig: { Binds: ['bulky:/data'] }, labels: { 'dockfleet.backup.stop': 'true' } });
  });

  after(async () => {
    await agent?.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    for (const at of mounts.reverse()) await execFileP('umount', ['-l', at]).catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a repository on a disk the backup overflows fails the job with restic's reason, the container runs again, and a later backup to a roomy repository works", async () => {
    const small = join(repoDir, 'small');
    await mountTmpfs(small, '6m');
    const failed = await failingBackup('bulky', join(small, 'repo'), appId);
    assert.match(failed.stderr, /the disk is full \(restic: .*no space left on device/i);
    const roomy = await cli('volume', 'backup', NODE, 'bulky', '--repo', join(repoDir, 'roomy'), '--wait');
    assert.equal(roomy.code, 0, roomy.stderr);
    assert.match(roomy.stdout, /^snapshot [0-9a-f]{8,64} of bulky in /m);
    assert.ok(await running(appId));
  });

  test('a repository on a disk that is no longer mounted is not made again underneath: the backup fails in words and writes nothing there', async () => {
    const disk = join(repoDir, 'usb');
    await mountTmpfs(disk, '64m');
    const first = await cli('volume', 'backup', NODE, 'bulky', '--repo', join(disk, 'repo'), '--wait');
    assert.equal(first.code, 0, first.stderr);
    await execFileP('umount', [disk]);
    mounts.splice(mounts.indexOf(disk), 1);
    assert.deepEqual(await readdir(disk), [], 'the bare mountpoint is empty');
    const failed = await failingBackup('bulky', join(disk, 'repo'), appId);
    assert.match(failed.stderr, /the repository .*usb\/repo was there before and is gone now \(a disk that is not mounted\?\)/);
    assert.deepEqual(await readdir(disk), [], 'no new repository was made on the disk underneath');
  });

  test('a restore into a new volume whose disk is too small fails in words and says the restore is incomplete', async () => {
    // The engine's volume lives on a 4 MiB tmpfs (mounted over its mountpoint, so restic writes into it).
    const at = await createVolume('bulky-copy');
    await mountTmpfs(at, '4m');
    const out = await cli('volume', 'restore', NODE, 'bulky', '--repo', join(repoDir, 'roomy'), '--to', 'bulky-copy', '--wait');
    assert.equal(out.code, 1, `the restore fails: ${out.stdout}${out.stderr}`);
    assert.match(out.stderr, /the restore into volume bulky-copy is incomplete: .*no space left on device/i);
    assert.doesNotMatch(`${out.stdout}${out.stderr}`, /restored|succeeded/i, 'nothing claims success');
  });

  test('a repository server that refuses connections fails the backup at once, in words, and the container runs again', async () => {
    const port = await freePort();
    const failed = await failingBackup('bulky', `rest:http://127.0.0.1:${port}/`, appId);
    assert.match(failed.stderr, /cannot be reached .*connection refused/);
    assert.ok(failed.ms < 60_000, `bounded: ${failed.ms} ms`);
    const listed = await cli('volume', 'snapshots', NODE, 'bulky', '--repo', `rest:http://127.0.0.1:${port}/`, '--json');
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /cannot be reached .*connection refused/, 'not "no repository there yet"');
  });

  test('a repository server that accepts and never answers fails the backup within 60 s (the agent stops restic after 30 s), and the container runs again', { timeout: 120_000 }, async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const failed = await failingBackup('bulky', `rest:http://127.0.0.1:${port}/`, appId);
      assert.match(failed.stderr, /did not answer within 30 s/);
      assert.ok(failed.ms < 60_000, `bounded: ${failed.ms} ms`);
      assert.ok(sockets.size > 0, 'restic did reach the silent server');
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('a repository path that is not there fails restore and snapshot list in words, at once', async () => {
    const gone = join(repoDir, 'unmounted-disk', 'repo');
    const restore = await cli('volume', 'restore', NODE, 'bulky', '--repo', gone, '--to', 'never-made', '--wait');
    assert.equal(restore.code, 1);
    assert.match(restore.stderr, /there is no repository at .*unmounted-disk\/repo yet/);
    assert.ok(restore.ms < 60_000);
    const listed = await cli('volume', 'snapshots', NODE, 'bulky', '--repo', gone);
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /there is no repository at/);
    const vol = await engineRequest(engine!.socketPath, 'GET', '/volumes/never-made');
    assert.equal(vol.status, 404, 'no volume was made for a restore that could not start');
  });
});
