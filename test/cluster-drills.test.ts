/**
 * The scale-out drills (issue 17, Tests) with every part real and the bus on: three `dockfleet hub`
 * processes (replica-a, -b, -c) on a private PostgreSQL and a private nats-server, sharing the CA
 * and master key (b and c start on copies of a's DIR), and a `dockfleet agent` process beside a
 * private engine, enrolled on a. The drills:
 * - docker-compose (v1) up through b, ps through c, down through a; docker ps and run --rm through each;
 * - kill -9 of the holder while a client loops GET /_ping through another replica: the agent is
 *   back within 15 s, the loop succeeds again, and no call hangs past its deadline;
 * - a job filed through a non-holder, its holder killed at once: it succeeds, and ran once;
 * - drain with a 1 GiB download in flight, through the holder and through another replica: it
 *   arrives whole, the agent moves, the draining replica exits 0;
 * - NATS stopped for 30 s: the holder keeps serving, others fail at once with bus_unavailable, and
 *   every replica serves the node again once NATS is back, with no restart.
 * Measured times are printed (`drill:` lines).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultMasterKeyFile } from '../src/hub/backup/master-key.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { hubRequest } from './support/hub-request.ts';
import { startNats, type TestNats } from './support/nats.ts';
import { startPostgres, type PostgresServer } from './support/postgres.ts';
import { type DockfleetProcess, freePort, spawnDockfleet } from './support/processes.ts';

const NODE = 'drill-node';
const MIB = 1024 * 1024;

interface Replica {
  id: string;
  dir: string;
  port: number;
  peerPort: number;
  url: string;
  proc: DockfleetProcess | null;
}

const replicas: Replica[] = [];
let pg: PostgresServer;
let nats: TestNats;
let store: string;
let engine: TestEngine;
let work: string;
let caFile: string;
let caPem: string;
let token: string;
let agent: DockfleetProcess | null = null;

const alive = (r: Replica): boolean => r.proc !== null && r.proc.child.exitCode === null && r.proc.child.signalCode === null;
const ms = (since: number): number => Date.now() - since;

async function startReplica(r: Replica): Promise<void> {
  r.proc = spawnDockfleet(
    ['hub', '--data', r.dir, '--listen', `127.0.0.1:${r.port}`, '--store', store, '--bus', nats.url, '--replica-id', r.id, '--peer-listen', `127.0.0.1:${r.peerPort}`, '--drain-timeout', '3m'],
    {
      DOCKFLEET_LOG_FORMAT: 'json',
    },
  );
  await r.proc.waitForLine(/hub ready/, 60_000);
}

async function killReplica(r: Replica): Promise<void> {
  if (!alive(r)) return;
  r.proc!.signal('SIGKILL');
  await r.proc!.exited;
}

/** The replica holding the node's link, read from the replicas' own logs: the one whose last word
 * on the node was "node online" (a link attached here), not "node offline" or "another replica
 * holds this node now". */
function holder(): Replica | undefined {
  return replicas.find((r) => {
    if (!alive(r)) return false;
    let holds = false;
    for (const line of r.proc!.stderr().split('\n')) {
      if (!line.includes(NODE)) continue;
      if (line.includes('"node online"')) holds = true;
      else if (line.includes('"node offline"') || line.includes('another replica holds this node now')) holds = false;
    }
    return holds;
  });
}

async function nodeStatus(r: Replica): Promise<string | undefined> {
  try {
    const res = await hubRequest(r.url, caPem, '/api/v1/nodes', { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 });
    return (res.json as Array<{ name: string; status: string }>).find((n) => n.name === NODE)?.status;
  } catch {
    return undefined;
  }
}

interface Ping {
  at: number;
  status: number;
  code: string | null;
  ms: number;
  hung: boolean;
}

/** GET /_ping through `r` with a 5 s deadline; a call past it counts as hung. */
async function ping(r: Replica, timeoutMs = 5_000): Promise<Ping> {
  const at = Date.now();
  try {
    const res = await hubRequest(r.url, caPem, `/docker/nodes/${NODE}/_ping`, { headers: { authorization: `Bearer ${token}` }, timeoutMs });
    const code = res.status === 200 ? null : ((res.json?.error?.code as string | undefined) ?? (/cluster bus is down/.test(res.text) ? 'bus_unavailable' : `${res.status} ${res.text.slice(0, 120)}`));
    return { at, status: res.status, code, ms: ms(at), hung: false };
  } catch (err) {
    return { at, status: 0, code: (err as Error).message, ms: ms(at), hung: /did not finish within/.test((err as Error).message) };
  }
}

/** Waits for the node to be held by a live replica other than `not`, and every live replica to reach it. */
async function settled(not?: Replica): Promise<Replica> {
  const h = await waitFor(
    () => {
      const found = holder();
      return found && found !== not ? found : null;
    },
    30_000,
    'a live replica to hold the node',
  );
  for (const r of replicas.filter(alive)) {
    await waitFor(async () => (await nodeStatus(r)) === 'online' && (await ping(r)).status === 200, 30_000, `${r.id} to list the node online and reach it`, 200);
  }
  return h;
}

const envs = new Map<Replica, NodeJS.ProcessEnv>();
async function dockerEnv(r: Replica): Promise<NodeJS.ProcessEnv> {
  const known = envs.get(r);
  if (known) return known;
  const p = spawnDockfleet(['docker-env', NODE, '--hub', r.url, '--token', token, '--ca', caFile, '--dir', join(work, `certs-${r.id}`)]);
  assert.equal((await p.exited).code, 0, p.stderr());
  const env = { ...parseExports(p.stdout()), DOCKER_CLI_HINTS: 'false' };
  envs.set(r, env);
  return env;
}

async function docker(r: Replica, args: string[]): Promise<string> {
  const res = await run(DOCKER_BIN, args, await dockerEnv(r), { timeoutMs: 60_000 });
  assert.equal(res.code, 0, `docker ${args.join(' ')} through ${r.id}: ${res.stderr}`);
  return res.stdout;
}

/** `docker-compose` (v1, which speaks only a unix socket) through `dockfleet connect` on `r`. */
async function compose(r: Replica, project: string, args: string[]): Promise<string> {
  const socket = join(work, `compose-${r.id}.sock`);
  const connect = spawnDockfleet(['connect', NODE, '--socket', socket, '--hub', r.url, '--token', token, '--ca', caFile]);
  try {
    await connect.waitForLine(/serving node/, 20_000);
    const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' };
    const res = await run('docker-compose', ['-p', 'drill', ...args], env, { timeoutMs: 120_000, cwd: project });
    assert.equal(res.code, 0, `docker-compose ${args.join(' ')} through ${r.id}: ${res.stderr}`);
    return res.stdout;
  } finally {
    await connect.stop();
  }
}

/** Streams GET `path` (through a replica, or from the engine's socket), read at up to `bytesPerSec` if
 * given; resolves with status, size and SHA-256. */
function download(path: string, through: Replica | null, onFirstByte: () => void = () => {}, bytesPerSec = 0): Promise<{ status: number; bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      const hash = createHash('sha256');
      let bytes = 0;
      const started = Date.now();
      res.on('data', (chunk: Buffer) => {
        if (bytes === 0) onFirstByte();
        hash.update(chunk);
        bytes += chunk.length;
        const ahead = bytesPerSec > 0 ? (bytes / bytesPerSec) * 1000 - (Date.now() - started) : 0;
        if (ahead > 5) {
          res.pause();
          setTimeout(() => res.resume(), ahead);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha: hash.digest('hex') }));
      res.on('error', reject);
    };
    const req = through
      ? https.request(new URL(`/docker/nodes/${NODE}${path}`, through.url), { ca: caPem, agent: false, headers: { authorization: `Bearer ${token}` } }, onResponse)
      : http.request({ socketPath: engine.socketPath, path }, onResponse);
    req.on('error', reject);
    req.end();
  });
}

describe('scale-out drills with replica processes and the bus', () => {
  before(async () => {
    [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    store = await pg.freshDatabase();
    [engine] = (await startEngines(1, { prefix: 'drills' })) as [TestEngine];
    work = await mkdtemp(join(tmpdir(), 'dockfleet-drills-'));
    const sections = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'archive', 'images', 'volumes', 'networks'];
    await writeFile(join(work, 'policy.json'), JSON.stringify({ sections: Object.fromEntries(sections.map((s) => [s, true])) }));
    for (const id of ['replica-a', 'replica-b', 'replica-c']) {
      const port = await freePort();
      replicas.push({ id, dir: join(work, id), port, peerPort: await freePort(), url: `https://127.0.0.1:${port}`, proc: null });
    }
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    await startReplica(a);
    caFile = join(a.dir, 'pki', 'ca.pem');
    caPem = await readFile(caFile, 'utf8');
    token = (await readFile(join(a.dir, 'admin.token'), 'utf8')).trim();
    for (const r of [b, c]) {
      await cp(a.dir, r.dir, { recursive: true });
      await cp(defaultMasterKeyFile(a.dir), defaultMasterKeyFile(r.dir));
      await rm(join(r.dir, 'replica-id'), { force: true });
    }
    await Promise.all([startReplica(b), startReplica(c)]);
    const code = await hubRequest(a.url, caPem, '/api/v1/enrollments', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: NODE }),
    });
    assert.equal(code.status, 201, code.text);
    agent = spawnDockfleet(['agent', '--hub', a.url, '--code', code.json.code, '--state', join(work, 'agent'), '--docker', engine.dockerHost, '--policy', join(work, 'policy.json')]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    assert.equal(await settled(), a, 'the agent holds its link to a, where it enrolled');
  });

  after(async () => {
    await agent?.stop();
    for (const r of replicas) await killReplica(r);
    if (engine) await stopEngines([engine]);
    await nats?.close();
    await pg?.stop();
    for (const r of replicas) await rm(defaultMasterKeyFile(r.dir), { force: true });
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('compose and the docker CLI work through every replica', { timeout: 180_000 }, async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const project = join(work, 'project');
    await mkdir(project);
    await writeFile(join(project, 'docker-compose.yml'), `version: "3"\nservices:\n  web:\n    image: ${BUSYBOX_IMAGE}\n    command: sleep 600\n`);
    await compose(b, project, ['up', '-d']);
    assert.match(await compose(c, project, ['ps']), /drill_web_1\s.*Up/);
    await compose(a, project, ['down']);
    for (const r of replicas) {
      assert.doesNotMatch(await docker(r, ['ps', '-a', '--format', '{{.Names}}']), /drill_web/, r.id);
      assert.equal((await docker(r, ['run', '--rm', BUSYBOX_IMAGE, 'echo', `via-${r.id}`])).trim(), `via-${r.id}`);
    }
  });

  it('kill -9 of the holder while a client loops through another replica: back within 15 s, no call hung', { timeout: 90_000 }, async () => {
    const held = holder()!;
    const through = replicas.find((r) => r !== held && alive(r))!;
    const seen: Ping[] = [];
    let looping = true;
    const loop = (async () => {
      while (looping) {
        seen.push(await ping(through));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await waitFor(() => seen.some((p) => p.status === 200), 5_000, 'the loop to reach the node');
    const killedAt = Date.now();
    await killReplica(held);
    const moved = await waitFor(
      () => {
        const h = holder();
        return h && h !== held ? h : null;
      },
      15_000,
      'the agent on another replica within 15 s',
      50,
    );
    const movedMs = ms(killedAt);
    await waitFor(() => seen.some((p) => p.at > killedAt && p.status === 200), 15_000, 'a ping through the other replica to succeed again');
    looping = false;
    await loop;
    const after = seen.filter((p) => p.at >= killedAt);
    const firstOk = after.find((p) => p.status === 200)!;
    const failed = after.filter((p) => p.at < firstOk.at);
    console.log(
      `drill: kill -9 of ${held.id}: agent on ${moved.id} after ${movedMs} ms; first good /_ping through ${through.id} ${firstOk.at - killedAt} ms after; ` +
        `${failed.length} failed calls meanwhile (slowest ${Math.max(0, ...after.map((p) => p.ms))} ms; ${[...new Set(failed.map((p) => p.code))].join(', ')})`,
    );
    assert.ok(movedMs < 15_000);
    assert.deepEqual(
      seen.filter((p) => p.hung),
      [],
      'no call hung past its deadline',
    );
    assert.ok(
      after.filter((p) => p.at > firstOk.at).every((p) => p.status === 200),
      'once back, every call succeeds',
    );
    await startReplica(held);
    await settled();
  });

  it('a job filed through another replica survives the holder’s kill -9 and runs once', { timeout: 120_000 }, async () => {
    const held = holder()!;
    const through = replicas.find((r) => r !== held && alive(r))!;
    const since = Math.floor(Date.now() / 1000) - 1;
    const compose = ['services:', '  once:', `    image: ${BUSYBOX_IMAGE}`, "    command: ['sleep', '600']", ''].join('\n');
    const filed = await hubRequest(through.url, caPem, '/api/v1/stacks/drillonce/deploy', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ compose, target: { node: NODE } }),
    });
    assert.equal(filed.status, 202, filed.text);
    await killReplica(held);
    const jobId = filed.json.jobs[0] as string;
    const filedAt = Date.now();
    type Job = { state: string; attempts: number; steps: Array<{ name: string }>; error: string | null };
    const done = await waitFor(
      async () => {
        const res = await hubRequest(through.url, caPem, `/api/v1/jobs/${jobId}`, { headers: { authorization: `Bearer ${token}` }, timeoutMs: 5_000 }).catch(() => null);
        const job = res?.json as Job | undefined;
        return job && (job.state === 'succeeded' || job.state === 'failed') ? job : null;
      },
      90_000,
      'the job to end',
      250,
    );
    const movedTo = holder();
    console.log(`drill: job filed on ${through.id}, ${held.id} killed: ${done.state} after ${ms(filedAt)} ms, ${done.attempts} attempt(s), agent on ${movedTo?.id}`);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
    const names = done.steps.map((s) => s.name);
    assert.deepEqual(names, [...new Set(names)], `each step ran once: ${names.join(', ')}`);
    const label = encodeURIComponent(JSON.stringify({ label: ['com.docker.compose.project=drillonce'] }));
    const listed = await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${label}`);
    assert.equal(listed.json.length, 1, `one container of the stack: ${listed.text}`);
    const creates = await engineRequest(
      engine.socketPath,
      'GET',
      `/events?since=${since}&until=${Math.ceil(Date.now() / 1000)}&filters=${encodeURIComponent(JSON.stringify({ type: ['container'], event: ['create'], label: ['com.docker.compose.project=drillonce'] }))}`,
    );
    assert.equal(creates.text.trim().split('\n').filter(Boolean).length, 1, `the engine created one container: ${creates.text}`);
    await startReplica(held);
    await settled();
  });

  /** A 1 GiB file in a container, and what the engine itself answers for it. */
  let big: { path: string; direct: { bytes: number; sha: string } } | null = null;

  async function drainDrill(via: 'holder' | 'another replica'): Promise<void> {
    if (!big) {
      const id = await runContainer(engine, { cmd: ['sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=1024 2>/dev/null && touch /done && sleep 3600'] });
      await waitFor(async () => (await engineRequest(engine.socketPath, 'HEAD', `/containers/${id}/archive?path=/done`)).status === 200, 90_000, 'the 1 GiB file', 500);
      const path = `/containers/${id}/archive?path=/big`;
      big = { path, direct: await download(path, null) };
      assert.ok(big.direct.bytes > 1024 * MIB);
    }
    const { path, direct } = big;
    {
      const held = holder()!;
      const through = via === 'holder' ? held : replicas.find((r) => r !== held && alive(r))!;
      let flowing: () => void = () => {};
      const firstByte = new Promise<void>((r) => (flowing = r));
      const started = Date.now();
      // Read a little slower than the replicas can send: the download's tail is still in their
      // buffers when the agent's side of it ends (where a tail used to be lost).
      const got = download(path, through, flowing, 64 * MIB);
      await firstByte;
      const termAt = Date.now();
      held.proc!.signal('SIGTERM');
      try {
        const moved = await waitFor(
          () => {
            const h = holder();
            return h && h !== held ? h : null;
          },
          15_000,
          'the agent on another replica',
          50,
        );
        const movedMs = ms(termAt);
        const result = await got;
        const doneMs = ms(termAt);
        const exit = await held.proc!.exited;
        const exitMs = ms(termAt);
        console.log(
          `drill: drain of ${held.id}, 1 GiB through ${through.id} (${via}): agent on ${moved.id} ${movedMs} ms after SIGTERM; ` +
            `download whole ${doneMs} ms after (${Math.round(result.bytes / MIB / ((Date.now() - started) / 1000))} MiB/s); exit ${exit.code} after ${ms(termAt)} ms`,
        );
        if (result.bytes !== direct.bytes) console.log(`${held.id}:\n${held.proc!.stderr().slice(-4000)}\nagent:\n${agent!.stderr().slice(-4000)}`);
        assert.equal(result.status, 200);
        assert.equal(result.bytes, direct.bytes, 'the download is whole');
        assert.equal(result.sha, direct.sha);
        assert.equal(exit.code, 0, 'the draining replica exits 0');
        // It goes once its last call has answered, not at the drain's bound (3 min here, for a slow machine).
        assert.ok(exitMs - doneMs < 10_000, `exited ${exitMs - doneMs} ms after the download ended`);
      } finally {
        await held.proc!.exited;
        await startReplica(held);
      }
      await settled();
    }
  }

  it('drain with a 1 GiB download in flight through the holder: whole, the agent moves, the replica exits 0 when it ends', { timeout: 240_000 }, () => drainDrill('holder'));

  // The agent leaves the replica that holds it while another replica forwards the download:
  // the tail must survive both hops' hang-ups (it used to stall there until the drain's bound).
  it('drain with a 1 GiB download in flight through another replica that forwards it: whole, the agent moves, exit 0', { timeout: 240_000 }, () => drainDrill('another replica'));

  it('NATS stopped for 30 s: the holder serves throughout, others fail at once with bus_unavailable; back without a restart', { timeout: 120_000 }, async () => {
    const held = holder()!;
    const others = replicas.filter((r) => r !== held && alive(r));
    const stoppedAt = Date.now();
    await nats.stop();
    const onHolder: Ping[] = [];
    const onOthers: Ping[] = [];
    try {
      while (ms(stoppedAt) < 30_000) {
        const [h, ...o] = await Promise.all([ping(held), ...others.map((r) => ping(r))]);
        onHolder.push(h!);
        onOthers.push(...o);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await nats.restart();
    }
    const backAt = Date.now();
    for (const r of replicas.filter(alive)) await waitFor(async () => (await ping(r)).status === 200, 30_000, `${r.id} to serve the node again`, 100);
    const recoveredMs = ms(backAt);
    const refused = onOthers.filter((p) => p.code === 'bus_unavailable');
    const firstRefused = refused[0];
    console.log(
      `drill: NATS down 30 s: ${onHolder.length} calls through the holder ${held.id} (slowest ${Math.max(...onHolder.map((p) => p.ms))} ms); ` +
        `others refused from ${firstRefused ? firstRefused.at - stoppedAt : '-'} ms on, ${refused.length} refusals (slowest ${Math.max(0, ...refused.map((p) => p.ms))} ms); every replica serves again ${recoveredMs} ms after NATS is back`,
    );
    assert.deepEqual(
      onHolder.filter((p) => p.status !== 200),
      [],
      'the holder serves its agent throughout',
    );
    assert.ok(firstRefused, 'the other replicas refuse with bus_unavailable');
    const afterRefusal = onOthers.filter((p) => p.at >= firstRefused.at);
    assert.deepEqual(
      afterRefusal.filter((p) => p.status !== 503 || p.code !== 'bus_unavailable' || p.ms >= 1_000),
      [],
      'once the bus is seen down, every call through another replica fails at once (503 bus_unavailable, under 1 s)',
    );
    assert.ok(firstRefused.at - stoppedAt < 15_000, 'the bus is seen down within 15 s');
  });
});
