/**
 * Volume backups (issue 14) end to end: a private engine, a real hub, a real `dockfleet agent`
 * process with a host policy that turns backups on, Debian's restic, and the CLI forms exactly
 * as CONTRACT.md has them. Volumes are compared by a manifest of their mountpoints (path, type,
 * mode, owner, size, SHA-256, link target).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Decrypter, armor } from 'age-encryption';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const execFileP = promisify(execFile);
const NODE = 'vault-01';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let dir = '';
let stateDir = '';
let policyFile = '';
let repoDir = '';

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet([...args, '--data', hub!.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1)!.trim();
}

async function startAgent(code?: string): Promise<DockfleetProcess> {
  const p = spawnDockfleet(['agent', '--hub', hub!.url, ...(code ? ['--code', code] : []), '--state', stateDir, '--docker', engine!.dockerHost, '--policy', policyFile]);
  await p.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
  return p;
}

async function createVolume(name: string): Promise<string> {
  const res = await engineRequest(engine!.socketPath, 'POST', '/volumes/create', { Name: name });
  assert.equal(res.status, 201, res.text);
  return String(res.json.Mountpoint);
}

async function mountpoint(name: string): Promise<string | null> {
  const res = await engineRequest(engine!.socketPath, 'GET', `/volumes/${name}`);
  return res.status === 200 ? String(res.json.Mountpoint) : null;
}

async function running(id: string): Promise<boolean> {
  const res = await engineRequest(engine!.socketPath, 'GET', `/containers/${id}/json`);
  return res.json?.State?.Running === true;
}

/** Every entry under `root`: relative path, type, mode, owner, size, SHA-256 (files), target (links). */
async function manifest(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = join(root, rel, name);
      const st = await lstat(path);
      const at = join(rel, name);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`L ${at} -> ${await readlink(path)}`);
      else if (st.isDirectory()) {
        out.push(`D ${at} ${mode} ${st.uid}:${st.gid}`);
        await walk(at);
      } else
        out.push(
          `F ${at} ${mode} ${st.uid}:${st.gid} ${st.size} ${createHash('sha256')
            .update(await readFile(path))
            .digest('hex')}`,
        );
    }
  };
  await walk('');
  return out;
}

/** Mixed files: text, binary, empty, nested, modes, owners, a symlink, a name outside ASCII. */
async function fillMixed(root: string): Promise<void> {
  await mkdir(join(root, 'db/tables'), { recursive: true });
  await writeFile(join(root, 'README.txt'), 'hello volume\n'.repeat(100));
  await writeFile(join(root, 'db/tables/blob.bin'), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(join(root, 'db/empty'), '');
  await writeFile(join(root, 'db/tables/ünïcode naïve.txt'), 'ü'.repeat(5000));
  await writeFile(join(root, 'secret.key'), randomBytes(64));
  await chmod(join(root, 'secret.key'), 0o600);
  await execFileP('chown', ['1234:5678', join(root, 'secret.key')]);
  await symlink('db/tables/blob.bin', join(root, 'link-to-blob'));
}

async function jobDetail(id: string): Promise<any> {
  const res = await hub!.api('GET', `/api/v1/jobs/${id}`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

async function finalJob(id: string, timeoutMs = 120_000): Promise<any> {
  return waitFor(
    async () => {
      const job = await jobDetail(id);
      return job.state === 'succeeded' || job.state === 'failed' ? job : null;
    },
    timeoutMs,
    `job ${id} to finish`,
    100,
  );
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

describe('volume backups with restic', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  before(async () => {
    [engine] = (await startEngines(1, { prefix: 'volbak' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-volbak-'));
    stateDir = join(dir, 'agent');
    repoDir = join(dir, 'repos');
    await mkdir(repoDir);
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { repository: join(repoDir, 'main'), repositoryPaths: [repoDir] } }));
    hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
    agent = await startAgent(await mintCode(hub, NODE));
  });

  after(async () => {
    await agent?.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a volume of mixed files is backed up to a path repository and restored into a new volume byte for byte; the escrowed key opens with the recovery code shown once', async () => {
    const source = await createVolume('shop-data');
    await fillMixed(source);
    const backup = await cli('volume', 'backup', NODE, 'shop-data', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    const jobId = lastLine(backup.stdout);
    assert.match(jobId, /^job_/);
    const code = /recovery code .*: ([A-Z0-9-]{35})$/m.exec(backup.stdout)?.[1];
    assert.ok(code, `a first escrow backup prints the recovery code: ${backup.stdout}`);
    assert.match(backup.stdout, /^snapshot [0-9a-f]{8,64} of shop-data in /m);

    // The hub holds the password only wrapped under the recovery code; the code opens it.
    const job = await jobDetail(jobId);
    assert.equal(job.kind, 'volume-backup');
    const escrowed = job.result.volume.escrowedKey as string;
    assert.ok(escrowed.includes('BEGIN AGE ENCRYPTED FILE'));
    assert.ok(!JSON.stringify(job).includes(code!), 'the recovery code itself never reaches the hub in the clear');
    const keyFile = (await readdir(join(stateDir, 'backup-keys')))[0]!;
    assert.equal((await lstat(join(stateDir, 'backup-keys', keyFile))).mode & 0o777, 0o600);
    const password = JSON.parse(await readFile(join(stateDir, 'backup-keys', keyFile), 'utf8')).password as string;
    assert.ok(!JSON.stringify(job).includes(password), 'the repository password never reaches the hub');
    const d = new Decrypter();
    d.addPassphrase(code!);
    assert.equal(await d.decrypt(armor.decode(escrowed), 'text'), password);

    const listed = await cli('volume', 'snapshots', NODE, 'shop-data', '--json');
    assert.equal(listed.code, 0, listed.stderr);
    const snapshots = JSON.parse(listed.stdout) as Array<{ id: string; tags: string[]; hostname: string }>;
    assert.equal(snapshots.length, 1);
    assert.deepEqual(snapshots[0]!.tags.sort(), ['dockfleet', `node=${NODE}`, 'volume=shop-data']);
    assert.ok(snapshots[0]!.id.startsWith(job.result.volume.snapshot), 'the snapshot the backup reported is the one listed');

    const restore = await cli('volume', 'restore', NODE, 'shop-data', '--to', 'shop-data-copy', '--wait');
    assert.equal(restore.code, 0, restore.stderr);
    const copy = await mountpoint('shop-data-copy');
    assert.ok(copy, 'restore --to created the new volume');
    assert.deepEqual(await manifest(copy!), await manifest(source));
    assert.equal((await manifest(source)).length, 8, 'every kind of entry is compared');

    // By snapshot id as well, into yet another volume.
    const byId = await cli('volume', 'restore', NODE, 'shop-data', '--snapshot', snapshots[0]!.id.slice(0, 8), '--to', 'shop-data-copy2', '--wait');
    assert.equal(byId.code, 0, byId.stderr);
    assert.deepEqual(await manifest((await mountpoint('shop-data-copy2'))!), await manifest(source));
  });

  test('restoring over a volume a running container uses is refused with the reason', async () => {
    const id = await runContainer(engine!, { name: 'copy-user', hostConfig: { Binds: ['shop-data-copy:/data'] } });
    const before = await manifest((await mountpoint('shop-data-copy'))!);
    const refused = await cli('volume', 'restore', NODE, 'shop-data', '--to', 'shop-data-copy', '--wait');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /in use by running container copy-user/);
    assert.deepEqual(await manifest((await mountpoint('shop-data-copy'))!), before);
    await engineRequest(engine!.socketPath, 'DELETE', `/containers/${id}?force=1`);
  });

  test('a container labelled dockfleet.backup.stop is stopped during the backup and running after; pre and post commands run inside it', async () => {
    await createVolume('app-data');
    const id = await runContainer(engine!, {
      name: 'app',
      hostConfig: { Binds: ['app-data:/data'] },
      labels: {
        'dockfleet.backup.stop': 'true',
        'dockfleet.backup.pre': 'echo dumped > /data/pre-dump.sql',
        'dockfleet.backup.post': 'date > /data/post-ran',
      },
    });
    const since = Math.floor(Date.now() / 1000) - 1;
    const backup = await cli('volume', 'backup', NODE, 'app-data', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    const until = Math.ceil(Date.now() / 1000) + 1;
    assert.ok(await running(id), 'running after the backup');
    const actions = await containerActions(id, since, until);
    const stopAt = actions.indexOf('stop');
    assert.ok(stopAt >= 0 && actions.indexOf('start', stopAt) > stopAt, `stopped, then started: ${actions.join(',')}`);
    const mount = (await mountpoint('app-data'))!;
    assert.ok(existsSync(join(mount, 'post-ran')), 'the post command ran');
    // The pre command ran before the snapshot: its dump is in it.
    const restore = await cli('volume', 'restore', NODE, 'app-data', '--to', 'app-data-check', '--wait');
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await readFile(join((await mountpoint('app-data-check'))!, 'pre-dump.sql'), 'utf8'), 'dumped\n');
    assert.ok(!existsSync(join((await mountpoint('app-data-check'))!, 'post-ran')), 'the post command ran after the snapshot');
    const job = await jobDetail(lastLine(backup.stdout));
    assert.ok(job.steps.some((s: { name: string }) => s.name === 'pre command in app'));
  });

  test('a failing pre command aborts the backup, and the container still runs', async () => {
    await createVolume('pre-fails');
    const id = await runContainer(engine!, {
      name: 'pre-fails-app',
      hostConfig: { Binds: ['pre-fails:/data'] },
      labels: { 'dockfleet.backup.stop': 'true', 'dockfleet.backup.pre': 'echo cannot dump >&2; exit 7' },
    });
    const backup = await cli('volume', 'backup', NODE, 'pre-fails', '--wait');
    assert.equal(backup.code, 1);
    assert.match(backup.stderr, /pre command in pre-fails-app .* exited with 7; no backup was made/);
    assert.ok(await running(id));
    const listed = await cli('volume', 'snapshots', NODE, 'pre-fails', '--json');
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  test('a repository whose password is wrong fails the backup in words, and the stopped container runs again', async () => {
    const id = await runContainer(engine!, { name: 'app-wrongpw', hostConfig: { Binds: ['app-data:/data'] }, labels: { 'dockfleet.backup.stop': 'true' } });
    // A repository that exists with another password, and a key file for it on this host.
    const repo = join(repoDir, 'other');
    await execFileP('restic', ['init', '--no-cache', '-r', repo], { env: { ...process.env, RESTIC_PASSWORD: 'someone-elses-password' } });
    const first = await cli('volume', 'backup', NODE, 'app-data', '--repo', join(repoDir, 'fresh'), '--wait');
    assert.equal(first.code, 0, first.stderr);
    const files = await readdir(join(stateDir, 'backup-keys'));
    const fresh = files.find((f) => JSON.parse(readFileSync(join(stateDir, 'backup-keys', f), 'utf8')).repository === join(repoDir, 'fresh'));
    assert.ok(fresh);
    // Point the fresh key at the foreign repository: the agent now holds a wrong password for it.
    await rm(join(repoDir, 'fresh'), { recursive: true });
    await execFileP('cp', ['-a', repo, join(repoDir, 'fresh')]);
    const since = Math.floor(Date.now() / 1000) - 1;
    const failed = await cli('volume', 'backup', NODE, 'app-data', '--repo', join(repoDir, 'fresh'), '--wait');
    const until = Math.ceil(Date.now() / 1000) + 1;
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the repository's password is wrong \(restic: .*wrong password/);
    const actions = await containerActions(id, since, until);
    assert.ok(actions.includes('stop') && actions.lastIndexOf('start') > actions.indexOf('stop'), `stopped, then started: ${actions.join(',')}`);
    assert.ok(await running(id));
    await engineRequest(engine!.socketPath, 'DELETE', `/containers/${id}?force=1`);
  });

  test("a repository path inside the engine's data root or outside backups.repositoryPaths is refused", async () => {
    const inRoot = await cli('volume', 'backup', NODE, 'app-data', '--repo', join(engine!.dataRoot, 'sneaky'), '--wait');
    assert.equal(inRoot.code, 1);
    assert.match(inRoot.stderr, /repositoryPaths|data root/);
    const outside = await cli('volume', 'backup', NODE, 'app-data', '--repo', join(dir, 'elsewhere'), '--wait');
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /outside backups\.repositoryPaths/);
  });

  test('two backups of one volume at once: the second waits for the first, and both succeed', async () => {
    const [a, b] = await Promise.all([hub!.api('POST', `/api/v1/nodes/${NODE}/volumes/shop-data/backups`, {}), hub!.api('POST', `/api/v1/nodes/${NODE}/volumes/shop-data/backups`, {})]);
    assert.equal(a.status, 202, JSON.stringify(a.json));
    assert.equal(b.status, 202, JSON.stringify(b.json));
    const [ja, jb] = await Promise.all([finalJob(a.json.id), finalJob(b.json.id)]);
    assert.equal(ja.state, 'succeeded', ja.error);
    assert.equal(jb.state, 'succeeded', jb.error);
    const span = (j: any): [number, number] => [Date.parse(j.steps[0].startedAt), Date.parse(j.steps.at(-1).finishedAt)];
    const [[a0, a1], [b0, b1]] = [span(ja), span(jb)];
    assert.ok(a1 <= b0 || b1 <= a0, `the runs do not overlap: ${a0}-${a1} and ${b0}-${b1}`);
    const listed = await cli('volume', 'snapshots', NODE, 'shop-data', '--json');
    assert.equal(JSON.parse(listed.stdout).length, 3);
    const plain = await cli('volume', 'snapshots', NODE, 'shop-data');
    assert.equal(plain.code, 0);
    assert.match(plain.stdout, /^last backup: .*\nlast verified: .*\nID\s+TIME\s+HOST\s+TAGS/);
  });

  test('an agent SIGKILLed mid-backup starts the stopped container when it returns, and finishes the job', async () => {
    const mount = await createVolume('big-data');
    for (let i = 0; i < 6; i++) await writeFile(join(mount, `chunk-${i}.bin`), randomBytes(48 * 1024 * 1024));
    const id = await runContainer(engine!, { name: 'big-app', hostConfig: { Binds: ['big-data:/data'] }, labels: { 'dockfleet.backup.stop': 'true' } });
    const filed = await hub!.api('POST', `/api/v1/nodes/${NODE}/volumes/big-data/backups`, {});
    assert.equal(filed.status, 202);
    await waitFor(async () => !(await running(id)), 60_000, 'the container to be stopped for the backup', 20);
    agent!.signal('SIGKILL');
    await agent!.exited;
    assert.equal(await running(id), false, 'the agent died with the container stopped');
    assert.equal((await readdir(join(stateDir, 'backup-stops'))).filter((n) => n.endsWith('.json')).length, 1, 'the durable marker names it');
    agent = await startAgent();
    const job = await finalJob(filed.json.id, 180_000);
    assert.equal(job.state, 'succeeded', job.error);
    assert.ok(await running(id), 'running again after the agent returned');
    assert.deepEqual(
      (await readdir(join(stateDir, 'backup-stops'))).filter((n) => n.endsWith('.json')),
      [],
    );
  });

  test("a volume backed up to the hub repository (over the agent's channel) restores byte for byte", async () => {
    const source = await createVolume('hub-bound');
    await fillMixed(source);
    const backup = await cli('volume', 'backup', NODE, 'hub-bound', '--repo', 'hub', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stdout, /^snapshot [0-9a-f]{8,64} of hub-bound in hub:volumes$/m);
    const restore = await cli('volume', 'restore', NODE, 'hub-bound', '--repo', 'hub', '--to', 'hub-bound-copy', '--wait');
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(await manifest((await mountpoint('hub-bound-copy'))!), await manifest(source));
  });

  test('a host whose policy has no backups section refuses volume jobs, saying so', async () => {
    await agent!.stop();
    await writeFile(policyFile, JSON.stringify({}));
    agent = await startAgent();
    const refused = await cli('volume', 'backup', NODE, 'shop-data', '--wait');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /policy has no backups section/);
    const listed = await cli('volume', 'snapshots', NODE, 'shop-data', '--json');
    assert.equal(listed.code, 1);
    assert.match(listed.stderr, /policy has no backups section/);
  });
});
