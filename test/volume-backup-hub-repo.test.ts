/**
 * Volume backups to the hub itself (issue 14, item 4): the real `restic` on an agent's host backs
 * up through `dockfleet agent restic-bridge`, the agent's unix socket and its existing channel to
 * the hub's repository server, with no new port. Restores byte for byte; the hub holds only
 * ciphertext; a node reaches only its own repositories; restic's own error for a wrong password;
 * a hub restarted mid-backup fails restic cleanly and the next backup and `restic check` pass.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hubRepoArgs, resticSocketPath } from '../src/agent/backup/hub-repo.ts';
import { NOOP_PATH } from '../src/protocol/inventory.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const HAS_RESTIC = spawnSync('restic', ['version']).status === 0;
const MARKER = `dockfleet-plaintext-marker-${randomBytes(8).toString('hex')}`;
const PASSWORD = 'correct horse battery staple';

interface ResticRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real restic against NAME at the hub, through the agent whose state is `stateDir`. */
function restic(
  stateDir: string,
  repo: string,
  args: string[],
  opts: { password?: string; cacheDir: string; onStdout?: (s: string) => void },
): { done: Promise<ResticRun>; kill: () => void; stderr: () => string } {
  const { repo: r, options } = hubRepoArgs(stateDir, repo);
  const child = spawn('restic', ['-r', r, ...options, '--cache-dir', opts.cacheDir, ...args], {
    env: { ...process.env, RESTIC_PASSWORD: opts.password ?? PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
    opts.onStdout?.(c.toString());
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<ResticRun>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return {
    done,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
    stderr: () => stderr,
  };
}

async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else {
        const hash = createHash('sha256');
        for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
        out.set(relative(dir, p), hash.digest('hex'));
      }
    }
  };
  await walk(dir);
  return out;
}

/** Every file under `dir` that contains `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if ((await readFile(p)).includes(needle)) hits.push(p);
    }
  };
  await walk(dir);
  return hits;
}

/** A raw HTTP/2 session to repository `repo` through the agent's socket, as restic's own would be. */
async function rawRepoSession(stateDir: string, repo: string): Promise<http2.ClientHttp2Session> {
  const sock = net.connect(resticSocketPath(stateDir));
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(`${JSON.stringify({ repo })}\n`);
  const answer = await firstLine(sock);
  if (!answer.startsWith('{"ok":true}')) throw new Error(`agent refused: ${answer}`);
  const session = http2.connect('http://localhost', { createConnection: () => sock });
  session.on('error', () => {});
  return session;
}

function firstLine(sock: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (c: Buffer): void => {
      got += c.toString('latin1');
      const end = got.indexOf('\n');
      if (end < 0) return;
      sock.off('data', onData);
      sock.pause();
      // Nothing follows the answer until this side speaks HTTP/2 first.
      resolve(got.slice(0, end));
    };
    sock.on('data', onData);
    sock.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
  });
}

async function call(session: http2.ClientHttp2Session, method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  const stream = session.request({ ':method': method, ':path': path }, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  const chunks: Buffer[] = [];
  let status = 0;
  stream.once('response', (h) => (status = Number(h[':status'])));
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return { status, body: Buffer.concat(chunks) };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function makeData(dir: string): Promise<void> {
  await mkdir(join(dir, 'small', 'deeper'), { recursive: true });
  for (let i = 0; i < 200; i++) await writeFile(join(dir, 'small', `f${i}.txt`), `file ${i}\n`.repeat(1 + (i % 50)));
  await writeFile(join(dir, 'small', 'deeper', 'secret.txt'), `plain text that must not reach the hub: ${MARKER}\n`.repeat(100));
  await writeFile(join(dir, 'zeros.bin'), Buffer.alloc(3 * 1024 * 1024));
  await writeFile(join(dir, 'random.bin'), randomBytes(20 * 1024 * 1024));
}

describe('volume backup to the hub over the agent channel', { skip: !HAS_RESTIC && !process.env.CI ? 'restic not installed' : false }, () => {
  let dir: string;
  let hub: TestHub;
  let port: number;
  let hubDir: string;
  let agentA: DockfleetProcess;
  let agentB: DockfleetProcess;
  let stateA: string;
  let stateB: string;
  let data: string;
  let cache: string;
  let repoRoot: string;
  /** The hub's DIR/restic is a small tmpfs of its own where mounting is allowed (the full-disk case). */
  let mounted = false;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-hub-repo-'));
    hubDir = join(dir, 'hub');
    stateA = join(dir, 'agent-a');
    stateB = join(dir, 'agent-b');
    data = join(dir, 'data');
    cache = join(dir, 'cache');
    await makeData(data);
    repoRoot = join(hubDir, 'restic');
    await mkdir(repoRoot, { recursive: true });
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'tmpfs', repoRoot]).status === 0;
    port = await freePort();
    hub = await startTestHub({ dataDir: hubDir, port });
    const start = async (node: string, state: string): Promise<DockfleetProcess> => {
      const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, node), '--state', state, '--docker', NO_ENGINE, '--policy', join(dir, 'no-policy.json')]);
      await agent.waitForLine(new RegExp(`agent ${node} connected`));
      return agent;
    };
    [agentA, agentB] = await Promise.all([start('node-a', stateA), start('node-b', stateB)]);
  });

  after(async () => {
    await agentA?.stop();
    await agentB?.stop();
    await hub?.stop({ keepData: true });
    if (mounted) spawnSync('umount', [repoRoot]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the agent keeps its restic socket private (0600)', async () => {
    const info = await stat(resticSocketPath(stateA));
    assert.ok(info.isSocket());
    assert.equal(info.mode & 0o777, 0o600);
  });

  it('init, backup, snapshots and restore through the hub: the same bytes come back', { timeout: 180_000 }, async () => {
    const init = await restic(stateA, 'vol1', ['init'], { cacheDir: cache }).done;
    assert.equal(init.code, 0, init.stderr);
    const backup = await restic(stateA, 'vol1', ['backup', '--json', data], { cacheDir: cache }).done;
    assert.equal(backup.code, 0, backup.stderr);
    const snapshots = await restic(stateA, 'vol1', ['snapshots', '--json'], { cacheDir: cache }).done;
    assert.equal(snapshots.code, 0, snapshots.stderr);
    const list = JSON.parse(snapshots.stdout) as Array<{ id: string; paths: string[] }>;
    assert.equal(list.length, 1);
    const target = join(dir, 'restored');
    const restore = await restic(stateA, 'vol1', ['restore', list[0]!.id, '--target', target], { cacheDir: cache }).done;
    assert.equal(restore.code, 0, restore.stderr);
    const [want, got] = await Promise.all([hashTree(data), hashTree(join(target, list[0]!.paths[0]!))]);
    assert.equal(got.size, want.size);
    assert.deepEqual(got, want);
  });

  it("another node reaches none of this node's repositories", { timeout: 60_000 }, async () => {
    // The same name from node-b is node-b's own (empty) repository, even with the right password.
    const theirs = await restic(stateB, 'vol1', ['snapshots'], { cacheDir: join(dir, 'cache-b') }).done;
    assert.notEqual(theirs.code, 0);
    assert.match(theirs.stderr, /Is there a repository at the following location\?/);
    const packs = await readdir(join(repoRoot, 'node-a', 'vol1', 'data'), { recursive: true });
    const pack = packs
      .map(String)
      .find((p) => /[0-9a-f]{64}$/.test(p))!
      .slice(-64);
    const before = await hashTree(join(repoRoot, 'node-a'));
    const session = await rawRepoSession(stateB, 'vol1');
    try {
      assert.equal((await call(session, 'GET', `/data/${pack}`)).status, 404);
      assert.equal((await call(session, 'HEAD', '/config')).status, 404);
      for (const path of ['/data/../../node-a/vol1/config', '/../node-a/vol1/config', '/config/../../node-a/vol1/config', '/%2e%2e/node-a/vol1/config', '/keys/../config']) {
        assert.equal((await call(session, 'GET', path)).status, 404, path);
      }
      const blob = randomBytes(1000);
      assert.equal((await call(session, 'POST', `/keys/${sha256(blob)}`, blob)).status, 404);
    } finally {
      session.destroy();
    }
    // A repository name that is not one path segment never leaves node-b's agent.
    await assert.rejects(rawRepoSession(stateB, '../node-a/vol1'), /agent refused: \{"ok":false/);
    assert.deepEqual(await hashTree(join(repoRoot, 'node-a')), before);
  });

  it("a wrong repository password fails with restic's own error", { timeout: 60_000 }, async () => {
    const wrong = await restic(stateA, 'vol1', ['snapshots'], { cacheDir: cache, password: 'not the password' }).done;
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /wrong password or no key found/);
  });

  it('the hub holds only ciphertext: a marker planted in the data is nowhere under DIR/restic', async () => {
    assert.equal((await filesContaining(data, MARKER)).length, 1);
    assert.deepEqual(await filesContaining(repoRoot, MARKER), []);
    assert.deepEqual(await filesContaining(repoRoot, 'plain text that must not reach the hub'), []);
  });

  it('files are written once, named by their hash, bounded, and read by range', { timeout: 60_000 }, async () => {
    const session = await rawRepoSession(stateA, 'vol1');
    try {
      const x = randomBytes(4096);
      const y = randomBytes(4096);
      assert.equal((await call(session, 'POST', `/locks/${sha256(y)}`, x)).status, 400);
      assert.equal((await call(session, 'HEAD', `/locks/${sha256(y)}`)).status, 404);
      assert.equal((await call(session, 'POST', `/locks/${sha256(x)}`, x)).status, 200);
      assert.equal((await call(session, 'POST', `/locks/${sha256(x)}`, x)).status, 200, 'the same bytes again are fine');
      const ranged = await new Promise<{ status: number; body: Buffer }>((resolve) => {
        const stream = session.request({ ':method': 'GET', ':path': `/locks/${sha256(x)}`, range: 'bytes=100-199' });
        const chunks: Buffer[] = [];
        let status = 0;
        stream.once('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.once('end', () => resolve({ status, body: Buffer.concat(chunks) }));
      });
      assert.equal(ranged.status, 206);
      assert.deepEqual(ranged.body, x.subarray(100, 200));
      assert.equal((await call(session, 'DELETE', `/locks/${sha256(x)}`)).status, 200);
      const config = await readFile(join(repoRoot, 'node-a', 'vol1', 'config'));
      assert.equal((await call(session, 'POST', '/config', randomBytes(config.length))).status, 403);
      assert.deepEqual((await call(session, 'GET', '/config')).body, config);
      const big = randomBytes(2 * 1024 * 1024);
      assert.equal((await call(session, 'POST', `/keys/${sha256(big)}`, big)).status, 413);
      assert.equal((await call(session, 'HEAD', `/keys/${sha256(big)}`)).status, 404);
      const listed = await call(session, 'GET', '/keys/');
      assert.equal(listed.status, 200);
      assert.equal((JSON.parse(listed.body.toString()) as unknown[]).length, 1);
    } finally {
      session.destroy();
    }
    assert.deepEqual(await readdir(join(repoRoot, '.tmp')), []);
  });

  it('a full disk answers 507 and leaves no partial file', { timeout: 60_000 }, async (t) => {
    if (!mounted && !process.env.CI) return t.skip('cannot mount a small tmpfs here');
    assert.ok(mounted, 'mounting a tmpfs is needed for this test');
    const filler = join(repoRoot, 'filler');
    const free = (): number => {
      const df = spawnSync('df', ['--output=avail', '-B1', repoRoot], { encoding: 'utf8' });
      return Number(df.stdout.trim().split('\n').pop());
    };
    await writeFile(filler, Buffer.alloc(Math.max(0, free() - 1024 * 1024)));
    const session = await rawRepoSession(stateA, 'vol1');
    try {
      const pack = randomBytes(4 * 1024 * 1024);
      assert.equal((await call(session, 'POST', `/data/${sha256(pack)}`, pack)).status, 507);
      assert.equal((await call(session, 'HEAD', `/data/${sha256(pack)}`)).status, 404);
      assert.deepEqual(await readdir(join(repoRoot, '.tmp')), []);
    } finally {
      session.destroy();
      await rm(filler, { force: true });
    }
  });

  it('management calls on the link go first while restic uploads over it', { timeout: 120_000 }, async () => {
    const bulk = join(dir, 'bulk');
    await mkdir(bulk);
    for (let i = 0; i < 6; i++) await writeFile(join(bulk, `b${i}.bin`), randomBytes(16 * 1024 * 1024));
    const link = hub.hub.registry.requireLink('node-a');
    const noop = async (): Promise<number> => {
      const start = performance.now();
      const { status } = await link.requestJson({ method: 'GET', path: NOOP_PATH, timeoutMs: 10_000 });
      assert.equal(status, 204);
      return performance.now() - start;
    };
    let uploading = false;
    const run = restic(stateA, 'vol1', ['backup', '--json', bulk], {
      cacheDir: cache,
      onStdout: (text) => {
        if (/"bytes_done":[1-9]/.test(text)) uploading = true;
      },
    });
    const during: number[] = [];
    let ended = false;
    void run.done.then(() => (ended = true));
    while (!ended) {
      if (uploading) during.push(await noop());
      await new Promise((r) => setTimeout(r, 20));
    }
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    assert.ok(during.length >= 5, `only ${during.length} calls landed during the upload`);
    during.sort((a, b) => a - b);
    const p50 = during[Math.floor(during.length / 2)]!;
    // The uploads yielded to the calls (link-qos.ts), and the calls were not stuck behind them.
    assert.ok(link.qos.yields > 0, 'restic uploads never yielded to a management call');
    assert.ok(p50 < 250, `management calls took ${p50.toFixed(1)} ms (p50) during the upload`);
    console.log(`noop during upload: n=${during.length} p50=${p50.toFixed(1)} ms max=${during.at(-1)!.toFixed(1)} ms yields=${link.qos.yields}`);
  });

  it('a hub restarted mid-backup fails restic cleanly; the next backup and restic check pass', { timeout: 300_000 }, async () => {
    const more = join(dir, 'more');
    await mkdir(more);
    for (let i = 0; i < 8; i++) await writeFile(join(more, `r${i}.bin`), randomBytes(16 * 1024 * 1024));
    let progress = 0;
    let stopped: Promise<void> | null = null;
    const run = restic(stateA, 'vol1', ['backup', '--json', more], {
      cacheDir: cache,
      onStdout: (text) => {
        for (const line of text.split('\n')) {
          const m = /"bytes_done":(\d+)/.exec(line);
          if (m) progress = Math.max(progress, Number(m[1]));
        }
        if (progress > 20 * 1024 * 1024 && !stopped) stopped = hub.stop({ keepData: true });
      },
    });
    let timer: NodeJS.Timeout | undefined;
    // restic 0.14 retries a failed call about ten times over a minute or so before it gives up.
    const first = await Promise.race([run.done, new Promise<null>((r) => (timer = setTimeout(() => r(null), 180_000)))]);
    clearTimeout(timer);
    // If it hangs, say where: is a bridge still running, and what had restic said.
    const bridges = first === null ? spawnSync('pgrep', ['-af', 'restic-bridge']).stdout.toString() : '';
    if (first === null) run.kill();
    assert.ok(stopped, 'the backup was under way when the hub stopped');
    await stopped;
    assert.ok(first, `restic ended by itself after the hub went away (bridges still running: ${bridges.trim() || 'none'}; restic said: ${run.stderr().slice(-2_000)})`);
    assert.notEqual(first.code, 0, 'restic did not report success for a cut-short backup');
    const linesBefore = agentA.lineCount();
    hub = await startTestHub({ dataDir: hubDir, port });
    await agentA.waitForLine(/agent node-a connected/, 30_000, linesBefore);
    // What the cut-short upload had half-written is gone.
    assert.deepEqual(await readdir(join(repoRoot, '.tmp')), []);
    const again = await restic(stateA, 'vol1', ['backup', '--json', more], { cacheDir: cache }).done;
    assert.equal(again.code, 0, again.stderr);
    // restic 0.14 leaves the cut-short backup's lock behind, and an exclusive lock (check, prune)
    // refuses any other lock; `unlock` removes only locks whose process is gone.
    const unlock = await restic(stateA, 'vol1', ['unlock'], { cacheDir: cache }).done;
    assert.equal(unlock.code, 0, unlock.stderr);
    const check = await restic(stateA, 'vol1', ['check'], { cacheDir: cache }).done;
    assert.equal(check.code, 0, check.stderr + check.stdout);
    assert.match(check.stdout, /no errors were found/);
  });
});
