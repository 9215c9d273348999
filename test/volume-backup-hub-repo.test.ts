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
function restic(stateDir: string, repo: string, args: string[], opts: { password?: string; cacheDir: string; onStdout?: (s: string) => void }): { done: Promise<ResticRun>; kill: () => void } {
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
  return { done, kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); } };
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

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-hub-repo-'));
    hubDir = join(dir, 'hub');
    stateA = join(dir, 'agent-a');
    stateB = join(dir, 'agent-b');
    data = join(dir, 'data');
    cache = join(dir, 'cache');
    await makeData(data);
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
});
