/**
 * Failover between hub replicas (issue 17, item 4), with real parts: two hub replica processes
 * sharing a private PostgreSQL and one CA and master key (the second starts on a copy of the
 * first's DIR), a real `dockfleet agent` process beside a private engine. Each replica hands its
 * agents a fixed replica list (the cluster's members list plugs into the same option).
 * - the agent learns the list at its handshake and keeps it across its own restart;
 * - kill -9 of the replica holding the agent: it is online on the other within 15 s, and a client
 *   looping GET /_ping through the survivor sees it succeed again;
 * - drain: a replica stopped while a 256 MiB download through it is in flight finishes that
 *   download whole, and the agent is then on the other replica.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultMasterKeyFile } from '../src/hub/backup/master-key.ts';
import { type TestEngine, runContainer, startEngines, stopEngines } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { hubRequest } from './support/hub-request.ts';
import { startPostgres, type PostgresServer } from './support/postgres.ts';
import { type DockfleetProcess, freePort, spawnDockfleet } from './support/processes.ts';

const ENTRY = fileURLToPath(new URL('./support/failover-hub-entry.ts', import.meta.url));
const NODE = 'fo-node';
const MIB = 1024 * 1024;

interface Replica {
  name: string;
  dir: string;
  port: number;
  url: string;
  child: ChildProcess | null;
  out: string;
  err: string;
}

const replicas: Replica[] = [];
let pg: PostgresServer;
let store: string;
let engine: TestEngine;
let work: string;
let caPem = '';
let token = '';
let agent: DockfleetProcess | null = null;
let list = '';

async function startReplica(r: Replica): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, r.dir, `127.0.0.1:${r.port}`, store, list], {
    env: { ...process.env, DOCKFLEET_LOG_LEVEL: 'info', DOCKFLEET_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  r.child = child;
  r.out = '';
  r.err = '';
  child.stdout!.on('data', (c: Buffer) => (r.out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (r.err += c.toString()));
  await waitFor(
    () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`replica ${r.name} exited: ${r.err.slice(-800)}`);
      return /^ready /m.test(r.out);
    },
    60_000,
    `replica ${r.name} to listen`,
    50,
  );
  const line = r.out.split('\n').find((l) => l.startsWith('ready '))!;
  caPem = Buffer.from(line.split(' ')[2]!, 'base64').toString();
}

function exited(r: Replica): Promise<void> {
  const child = r.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function killReplica(r: Replica): Promise<void> {
  const done = exited(r);
  r.child?.kill('SIGKILL');
  await done;
}

async function status(r: Replica): Promise<string | undefined> {
  try {
    const res = await hubRequest(r.url, caPem, '/api/v1/nodes', { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 });
    return (res.json as Array<{ name: string; status: string }>).find((n) => n.name === NODE)?.status;
  } catch {
    return undefined;
  }
}

async function ping(r: Replica): Promise<number> {
  try {
    const res = await hubRequest(r.url, caPem, `/docker/nodes/${NODE}/_ping`, { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 });
    return res.status;
  } catch {
    return 0;
  }
}

function startAgent(args: string[]): DockfleetProcess {
  return spawnDockfleet(['agent', '--state', join(work, 'agent'), '--docker', engine.dockerHost, '--policy', join(work, 'policy.json'), ...args]);
}

/** Streams GET `path` from `r` reading at about `bytesPerSec`; resolves with its status, size and SHA-256. */
function slowDownload(r: Replica, path: string, bytesPerSec: number, onFirstByte: () => void): Promise<{ status: number; bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, r.url), { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      const started = Date.now();
      let first = true;
      res.on('data', (chunk: Buffer) => {
        if (first) {
          first = false;
          onFirstByte();
        }
        hash.update(chunk);
        bytes += chunk.length;
        const ahead = (bytes / bytesPerSec) * 1000 - (Date.now() - started);
        if (ahead > 5) {
          res.pause();
          setTimeout(() => res.resume(), ahead);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The same GET straight from the engine's socket, for comparison. */
function directDownload(path: string): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: engine.socketPath, path }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.length;
      });
      res.on('end', () => resolve({ bytes, sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hub replica failover', { timeout: 300_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    store = await pg.freshDatabase();
    [engine] = (await startEngines(1, { prefix: 'failover' })) as [TestEngine];
    work = await mkdtemp(join(tmpdir(), 'dockfleet-failover-'));
    // This host lets the hub read container files (the 256 MiB download is a docker cp out).
    await writeFile(join(work, 'policy.json'), JSON.stringify({ sections: { ping: true, version: true, containers: true, archive: true } }));
    for (const name of ['a', 'b']) {
      const port = await freePort();
      replicas.push({ name, dir: join(work, `hub-${name}`), port, url: `https://127.0.0.1:${port}`, child: null, out: '', err: '' });
    }
    list = replicas.map((r) => r.url).join(',');
    const a = replicas[0] as Replica;
    await startReplica(a);
    token = (await readFile(join(a.dir, 'admin.token'), 'utf8')).trim();
  });

  after(async () => {
    await agent?.stop();
    for (const r of replicas) await killReplica(r);
    if (engine) await stopEngines([engine]);
    await pg?.stop();
    for (const r of replicas) await rm(defaultMasterKeyFile(r.dir), { force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the agent learns the replica list at its handshake and keeps it across its own restart', async () => {
    const [a, b] = replicas as [Replica, Replica];
    const code = await hubRequest(a.url, caPem, '/api/v1/enrollments', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: NODE }),
    });
    assert.equal(code.status, 201, code.text);
    agent = startAgent(['--hub', a.url, '--code', code.json.code]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    const kept = JSON.parse(await readFile(join(work, 'agent', 'replicas.json'), 'utf8'));
    assert.deepEqual(kept.replicas, [a.url, b.url]);
    await agent.stop();
    // The second replica starts now, on a copy of the first's DIR (the same CA and master key).
    // Without the bus a replica knows only the nodes enrolled before it started.
    await cp(a.dir, b.dir, { recursive: true });
    await cp(defaultMasterKeyFile(a.dir), defaultMasterKeyFile(b.dir));
    await startReplica(b);
    // Restarted while its enrollment hub is down, the agent finds the other replica from its state.
    await killReplica(a);
    agent = startAgent([]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 20_000);
    await waitFor(async () => (await status(b)) === 'online', 10_000, 'the agent online on replica b');
    await startReplica(a);
  });

  it('kill -9 of the replica holding the agent: online on the other within 15 s, and calls through it succeed again', async () => {
    const [a, b] = replicas as [Replica, Replica];
    assert.equal(await status(b), 'online');
    const before = await ping(a);
    assert.notEqual(before, 200, 'replica a must not reach the agent before the kill (it is on b)');
    let loop = true;
    const seen: Array<{ at: number; status: number }> = [];
    const looping = (async () => {
      while (loop) {
        seen.push({ at: Date.now(), status: await ping(a) });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const killedAt = Date.now();
    await killReplica(b);
    await waitFor(async () => (await status(a)) === 'online', 15_000, 'the agent online on replica a within 15 s', 100);
    const onlineMs = Date.now() - killedAt;
    await waitFor(() => seen.some((s) => s.at > killedAt && s.status === 200), 5_000, 'a ping through replica a to succeed');
    loop = false;
    await looping;
    const firstOk = seen.find((s) => s.at > killedAt && s.status === 200)!;
    console.log(`failover: agent online on the survivor ${onlineMs} ms after kill -9; first good /_ping ${firstOk.at - killedAt} ms after`);
    assert.ok(onlineMs < 15_000);
    await startReplica(b);
  });

  it('drain: a replica stopped during a 256 MiB download through it finishes that download whole, and its agent moves', async () => {
    const [a, b] = replicas as [Replica, Replica];
    assert.equal(await status(a), 'online');
    const id = await runContainer(engine, { cmd: ['sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=256 2>/dev/null && sleep 3600'] });
    await waitFor(
      async () => {
        const res = await directDownload(`/containers/${id}/archive?path=/big`);
        return res.bytes > 256 * MIB;
      },
      60_000,
      'the 256 MiB file in the container',
      500,
    );
    // dd may still be writing when the size first passes: wait until two reads agree.
    let direct = await directDownload(`/containers/${id}/archive?path=/big`);
    for (;;) {
      const again = await directDownload(`/containers/${id}/archive?path=/big`);
      if (again.sha === direct.sha) break;
      direct = again;
    }
    let firstByte: () => void = () => {};
    const flowing = new Promise<void>((r) => (firstByte = r));
    // About 40 MiB/s: some 6 s in flight, most of it after the SIGTERM.
    const download = slowDownload(a, `/docker/nodes/${NODE}/containers/${id}/archive?path=/big`, 40 * MIB, firstByte);
    await flowing;
    const termAt = Date.now();
    a.child!.kill('SIGTERM');
    // The agent moves while the download goes on: online on b before a has exited.
    await waitFor(async () => (await status(b)) === 'online', 15_000, 'the agent online on replica b', 100);
    const movedMs = Date.now() - termAt;
    // On a failure, what the draining replica said: the one place that tells a stall from a cut.
    const said = (): string => `replica a:\n${a.err.slice(-3000)}\n${a.out.slice(-1000)}`;
    const got = await download.catch((err: Error) => {
      throw new Error(`the download through the draining replica failed (${err.message})\n${said()}`);
    });
    await exited(a);
    const downloadDoneMs = Date.now() - termAt;
    assert.equal(got.status, 200);
    assert.equal(got.bytes, direct.bytes, `the download through the draining replica is whole\n${said()}`);
    assert.equal(got.sha, direct.sha);
    assert.match(a.out, /drained in \d+ ms/);
    assert.equal(a.child!.exitCode, 0);
    assert.ok(movedMs < downloadDoneMs, `the agent moved (${movedMs} ms) before the download ended (${downloadDoneMs} ms)`);
    assert.equal(await ping(b), 200, 'new calls go to the new holder');
    console.log(`drain: agent on the other replica ${movedMs} ms after SIGTERM; download (${got.bytes} bytes) done ${downloadDoneMs} ms after`);
  });
});
