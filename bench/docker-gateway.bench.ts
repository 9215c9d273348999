/**
 * Docker gateway: what going through the hub costs compared with talking to the engine's unix
 * socket directly, measured side by side in one run against a private dockerd
 * (test/support/engines.ts), with the hub and the agent as separate `node bin/dockfleet.js`
 * processes (client, hub and agent never share an event loop).
 *
 *   node --import tsx bench/docker-gateway.bench.ts
 *
 * Phases (BENCH_PHASES=small,stream,rtt,many picks some):
 *   small   /_ping, /version, /containers/json (50 running containers): N sequential requests
 *           over keep-alive each, direct (node:http, socketPath) vs hub (bearer token) vs hub
 *           (client certificate from POST /api/v1/client-certs, as the docker CLI does), in
 *           interleaved blocks so drift hits all three alike. Hub, agent and dockerd CPU per call.
 *           Then the same with BENCH_SMALL_GAP_MS of silence after each answer, so the engine never
 *           sees two calls back to back on any path (dockerd answers some calls faster when they
 *           come back to back, which flatters the direct path in the first series).
 *   stream  a container holding a 1 GiB file: GET /containers/ID/export and
 *           GET /containers/ID/archive?path=/big, direct vs hub, MB/s, hub/agent RSS every 100 ms.
 *   rtt     a network namespace behind a veth pair with netem 25 ms each way (50 ms RTT); a second
 *           hub on 10.231.77.1, its agent inside the namespace (engine reached by unix socket);
 *           the 1 GiB export through that hub, beside plain TCP over the same link as baseline.
 *   many    200 concurrent clients on GET /containers/json for 10 s: direct, direct while a 1 GiB
 *           export streams straight from the engine (references), hub, hub while the export
 *           streams through the same agent; closed loop (each client
 *           sends its next call as soon as it has the answer: measures saturation) and paced
 *           (each client at most one call per 5 s, then per 1 s: 40 and 200 calls/s in all).
 *           First, one client pinging every 20 ms while the export runs, direct and through the hub.
 *
 * Native relay reference (lib/native-relay.ts): when nginx with its stream module is at hand
 * (bench/fetch-nginx.sh), small, stream and many also go through two nginx processes that do
 * nothing but relay bytes over the same two TLS hops: what a lean native relay reaches here.
 *
 * Writes bench/results/docker-gateway.json and prints a summary. Knobs (env): BENCH_SMALL_N=2000
 * BENCH_SMALL_ROUNDS=4 BENCH_SMALL_SPACED_N=500 BENCH_SMALL_GAP_MS=10 BENCH_CONTAINERS=50 BENCH_BIG_MIB=1024 BENCH_STREAM_REPS=2
 * BENCH_MANY_CLIENTS=200 BENCH_MANY_MS=10000 BENCH_MANY_INTERVALS=5000,1000 BENCH_CPU_PROF=DIR
 * BENCH_WATCHDOG_MS=600000. Kills only the pids it started; removes its engine, namespace and
 * temp dirs also on failure.
 */
import { generateKeyPairSync } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from '../test/support/engines.ts';
import { ROOT, childEnv, policyJson, startAgentProcess, startHubProcess, type HubProcess } from './lib/dockfleet-procs.ts';
import { TimedClient, type Target } from './lib/http-timing.ts';
import { runPool } from './lib/hub-http.ts';
import type { LoadResult } from './lib/load-client.ts';
import { machineFacts } from './lib/machine.ts';
import { findNginx, startRelayChain, type RelayChain } from './lib/native-relay.ts';
import { createDelayedNetns, tcpConnectRtt, type DelayedNetns } from './lib/netns.ts';
import { cpuSeconds, freePort, rssBytes, sleep, startChild, type Child } from './lib/proc.ts';
import { startSampler, type ProcWindow } from './lib/sampler.ts';
import { median, summarize, type LatencySummary } from './lib/stats.ts';
import { envInt } from './lib/env-int.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'docker-gateway.json');
const LOAD_CLIENT = join(ROOT, 'bench', 'lib', 'load-client.ts');

const PHASES = new Set((process.env.BENCH_PHASES ?? 'small,stream,rtt,many').split(',').map((s) => s.trim()));
const SMALL_N = envInt('BENCH_SMALL_N', 2000);
const SMALL_ROUNDS = Math.max(1, envInt('BENCH_SMALL_ROUNDS', 4));
const CONTAINERS = envInt('BENCH_CONTAINERS', 50);
const SMALL_SPACED_N = envInt('BENCH_SMALL_SPACED_N', 500);
const SMALL_GAP_MS = envInt('BENCH_SMALL_GAP_MS', 10);
const SMALL_PATHS = (process.env.BENCH_SMALL_PATHS ?? '/_ping,/version,/containers/json').split(',');
const BIG_MIB = envInt('BENCH_BIG_MIB', 1024);
const STREAM_REPS = Math.max(1, envInt('BENCH_STREAM_REPS', 2));
const MANY_CLIENTS = envInt('BENCH_MANY_CLIENTS', 200);
const MANY_MS = envInt('BENCH_MANY_MS', 10_000);
const MANY_INTERVALS = (process.env.BENCH_MANY_INTERVALS ?? '5000,1000')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const WATCHDOG_MS = envInt('BENCH_WATCHDOG_MS', 600_000);
const RTT_SUBNET = '10.231.77';
const RTT_ONE_WAY_MS = 25;
const PING_INTERVAL_MS = 20;
const NODE = 'gw';
const FAR_NODE = 'far';

const TARGETS = {
  smallP50OverheadMs: 1,
  smallP99OverheadMs: 5,
  streamRatio: 0.8,
  streamRssDeltaBytes: 64 * 1024 * 1024,
  rttMBps: 20,
  manyP99Ms: 20,
};

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
const MB = 1e6;
const MiB = 1024 * 1024;
const log = benchLog;

interface Ctx {
  engine: TestEngine;
  work: string;
  policyFile: string;
  hub: HubProcess;
  agent: Child;
  tokenTarget: Target;
  /** The two-nginx chain (lib/native-relay.ts), when nginx is at hand. */
  relay: RelayChain | null;
  certTarget: Target;
  pids: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// small calls

/** A client certificate as `dockfleet docker-env` gets one: key made here, public key certified by the hub. */
async function clientCertTarget(hub: HubProcess): Promise<Target> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const body = JSON.stringify({ publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() });
  const issued = await new Promise<{ certPem: string; caPem: string }>((resolve, reject) => {
    const req = httpsRequest(
      new URL('/api/v1/client-certs', hub.url),
      {
        method: 'POST',
        ca: hub.caPem,
        agent: false,
        headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text)) : reject(new Error(`client-certs: HTTP ${res.statusCode} ${text}`))));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
  return { kind: 'https', base: hub.url, caPem: issued.caPem, cert: issued.certPem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

interface SmallSeries {
  latencyMs: Record<string, LatencySummary>;
  overheadMs: Record<string, { p50: number; p99: number; mean: number }>;
  cpuMicrosPerRequest: Record<string, Record<string, number>>;
}

interface SmallEndpointResult extends SmallSeries {
  path: string;
  responseBytes: Record<string, number>;
  withinTarget: Record<string, { p50: boolean; p99: boolean }>;
  /** The same calls with a pause after each answer (BENCH_SMALL_GAP_MS): the engine never sees two calls back to back. */
  spaced: SmallSeries & { gapMs: number; requestsPerClient: number };
}

async function startSmallContainers(engine: TestEngine): Promise<void> {
  log(`starting ${CONTAINERS} containers`);
  await runPool(CONTAINERS, 4, async (i) => void (await runContainer(engine, { name: `small-${i}` })));
  await assertRunning(engine);
}

async function assertRunning(engine: TestEngine): Promise<void> {
  const listed = await engineRequest(engine.socketPath, 'GET', '/containers/json');
  if (!Array.isArray(listed.json) || listed.json.length !== CONTAINERS) throw new Error(`expected ${CONTAINERS} running containers, engine lists ${listed.json?.length}`);
}

async function smallCalls(ctx: Ctx): Promise<Record<string, unknown>> {
  await assertRunning(ctx.engine);

  const clients: Record<string, { client: TimedClient; prefix: string }> = {
    direct: { client: new TimedClient({ kind: 'unix', socketPath: ctx.engine.socketPath }), prefix: '' },
    hubToken: { client: new TimedClient(ctx.tokenTarget), prefix: `/docker/nodes/${NODE}` },
    hubCert: { client: new TimedClient(ctx.certTarget), prefix: `/docker/nodes/${NODE}` },
    ...(ctx.relay ? { nativeRelay: { client: new TimedClient(ctx.relay.target), prefix: '' } } : {}),
  };
  const cpuPids: Record<string, number> = { hub: ctx.pids.hub!, agent: ctx.pids.agent!, dockerd: ctx.pids.dockerd!, client: process.pid, ...(ctx.relay?.pids ?? {}) };
  const cpuNow = (): Record<string, number> =>
    Object.fromEntries(
      Object.entries(cpuPids).map(([k, pid]) => {
        const c = cpuSeconds(pid);
        return [k, c.user + c.system];
      }),
    );

  /** `n` calls per client in interleaved blocks, each call followed by `gapMs` of silence. */
  const series = async (path: string, n: number, gapMs: number): Promise<SmallSeries> => {
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(clients).map((k) => [k, []]));
    const cpu: Record<string, Record<string, number>> = Object.fromEntries(Object.keys(clients).map((k) => [k, Object.fromEntries(Object.keys(cpuPids).map((p) => [p, 0]))]));
    const per = Math.ceil(n / SMALL_ROUNDS);
    for (let r = 0; r < SMALL_ROUNDS; r++) {
      for (const [name, { client, prefix }] of Object.entries(clients)) {
        const before = cpuNow();
        for (let i = 0; i < per && samples[name]!.length < n; i++) {
          const res = await client.request(`${prefix}${path}`);
          if (res.status !== 200) throw new Error(`${name} ${path}: HTTP ${res.status} on call ${samples[name]!.length + 1}`);
          samples[name]!.push(res.ms);
          if (gapMs > 0) await sleep(gapMs);
        }
        const after = cpuNow();
        for (const p of Object.keys(cpuPids)) cpu[name]![p]! += after[p]! - before[p]!;
      }
    }
    const latencyMs = Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, summarize(s)]));
    const overhead = (k: string): { p50: number; p99: number; mean: number } => ({
      p50: round(latencyMs[k]!.p50 - latencyMs.direct!.p50, 3),
      p99: round(latencyMs[k]!.p99 - latencyMs.direct!.p99, 3),
      mean: round(latencyMs[k]!.mean - latencyMs.direct!.mean, 3),
    });
    return {
      latencyMs,
      overheadMs: Object.fromEntries(
        Object.keys(clients)
          .filter((k) => k !== 'direct')
          .map((k) => [k, overhead(k)]),
      ),
      cpuMicrosPerRequest: Object.fromEntries(
        Object.entries(cpu).map(([k, byProc]) => [k, Object.fromEntries(Object.entries(byProc).map(([p, s]) => [p, Math.round((s / samples[k]!.length) * 1e6)]))]),
      ),
    };
  };

  const endpoints: SmallEndpointResult[] = [];
  try {
    for (const path of SMALL_PATHS) {
      log(`small: ${path} × ${SMALL_N} each: ${Object.keys(clients).join(', ')}`);
      const responseBytes: Record<string, number> = {};
      for (const [name, { client, prefix }] of Object.entries(clients)) {
        for (let i = 0; i < 200; i++) {
          const res = await client.request(`${prefix}${path}`, { keepBody: true });
          if (res.status !== 200) throw new Error(`${name} ${path}: HTTP ${res.status} ${res.body?.toString('utf8').slice(0, 300)}`);
          responseBytes[name] = res.bytes;
        }
        if (path === '/containers/json') {
          const res = await client.request(`${prefix}${path}`, { keepBody: true });
          const n = (JSON.parse(res.body!.toString()) as unknown[]).length;
          if (n !== CONTAINERS) throw new Error(`${name}: /containers/json listed ${n} containers, expected ${CONTAINERS}`);
        }
      }
      const backToBack = await series(path, SMALL_N, 0);
      log(`small: ${path} × ${SMALL_SPACED_N} each, ${SMALL_GAP_MS} ms apart`);
      const spaced = await series(path, SMALL_SPACED_N, SMALL_GAP_MS);
      endpoints.push({
        path,
        responseBytes,
        ...backToBack,
        withinTarget: Object.fromEntries(Object.entries(backToBack.overheadMs).map(([k, o]) => [k, { p50: o.p50 <= TARGETS.smallP50OverheadMs, p99: o.p99 <= TARGETS.smallP99OverheadMs }])),
        spaced: { gapMs: SMALL_GAP_MS, requestsPerClient: SMALL_SPACED_N, ...spaced },
      });
    }
  } finally {
    for (const { client } of Object.values(clients)) client.close();
  }
  return { requestsPerClient: SMALL_N, interleavedRounds: SMALL_ROUNDS, runningContainers: CONTAINERS, endpoints };
}

// ---------------------------------------------------------------------------------------------
// the big container

interface BigContainer {
  id: string;
  fileBytes: number;
  source: string;
  fillSeconds: number;
}

async function makeBigContainer(engine: TestEngine): Promise<BigContainer> {
  const id = await runContainer(engine, { name: 'big' });
  const fill = async (source: string): Promise<number> => {
    const t0 = Date.now();
    const created = await engineRequest(engine.socketPath, 'POST', `/containers/${id}/exec`, {
      Cmd: ['dd', `if=${source}`, 'of=/big', 'bs=1M', `count=${BIG_MIB}`],
      AttachStdout: false,
      AttachStderr: false,
    });
    if (created.status !== 201) throw new Error(`exec create: ${created.status} ${created.text}`);
    const execId = String(created.json.Id);
    const started = await engineRequest(engine.socketPath, 'POST', `/exec/${execId}/start`, { Detach: true });
    if (started.status !== 200) throw new Error(`exec start: ${started.status} ${started.text}`);
    for (;;) {
      const state = await engineRequest(engine.socketPath, 'GET', `/exec/${execId}/json`);
      if (state.json?.Running === false) {
        if (state.json.ExitCode !== 0) throw new Error(`dd exited with ${state.json.ExitCode}`);
        return (Date.now() - t0) / 1000;
      }
      if (Date.now() - t0 > 180_000) throw new Error(`dd from ${source} took over 180 s`);
      await sleep(200);
    }
  };
  let source = '/dev/urandom';
  let fillSeconds: number;
  try {
    fillSeconds = await fill(source);
  } catch (err) {
    log(`big: /dev/urandom failed (${(err as Error).message}); using /dev/zero`);
    source = '/dev/zero';
    fillSeconds = await fill(source);
  }
  // Stopped, so GET /containers/json still lists exactly the small containers.
  await engineRequest(engine.socketPath, 'POST', `/containers/${id}/stop?t=1`);
  const stat = await engineRequest(engine.socketPath, 'HEAD', `/containers/${id}/archive?path=/big`);
  const header = stat.headers['x-docker-container-path-stat'];
  const fileBytes = header ? Number((JSON.parse(Buffer.from(String(header), 'base64').toString()) as { size: number }).size) : Number.NaN;
  if (fileBytes !== BIG_MIB * MiB) throw new Error(`/big is ${fileBytes} bytes, expected ${BIG_MIB * MiB}`);
  return { id, fileBytes, source, fillSeconds: round(fillSeconds, 1) };
}

// ---------------------------------------------------------------------------------------------
// transfers with RSS sampling

interface RssFigures {
  idleBytes: number;
  peakBytes: number;
  deltaBytes: number;
}

interface TransferResult {
  via: string;
  status: number;
  bytes: number;
  seconds: number;
  MBps: number;
  rss: Record<string, RssFigures>;
  cpuPercent: Record<string, number>;
}

async function idleRss(pids: Record<string, number>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((k) => [k, []]));
  for (let i = 0; i < 5; i++) {
    if (i > 0) await sleep(100);
    for (const [k, pid] of Object.entries(pids)) samples[k]!.push(rssBytes(pid));
  }
  return Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, median(s)]));
}

function rssFigures(idle: Record<string, number>, windows: Record<string, ProcWindow>): Record<string, RssFigures> {
  return Object.fromEntries(Object.entries(idle).map(([k, i]) => [k, { idleBytes: i, peakBytes: windows[k]!.peakRss, deltaBytes: windows[k]!.peakRss - i }]));
}

async function transfer(via: string, client: TimedClient, path: string, rssPids: Record<string, number>, cpuPids: Record<string, number>): Promise<TransferResult> {
  await sleep(500);
  const idle = await idleRss(rssPids);
  const sampler = startSampler({ ...rssPids, ...cpuPids, client: process.pid }, 100);
  const windowsOf: Array<Record<string, ProcWindow>> = [];
  const res = await client.request(path, { timeoutMs: 120_000 }).finally(() => void windowsOf.push(sampler.stop()));
  const windows = windowsOf[0]!;
  if (res.status !== 200) throw new Error(`${via} ${path}: HTTP ${res.status}`);
  const seconds = res.ms / 1000;
  return {
    via,
    status: res.status,
    bytes: res.bytes,
    seconds: round(seconds, 3),
    MBps: round(res.bytes / MB / seconds, 1),
    rss: rssFigures(idle, windows),
    cpuPercent: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, w.cpuPercent])),
  };
}

async function streams(ctx: Ctx, big: BigContainer): Promise<Record<string, unknown>> {
  const direct = new TimedClient({ kind: 'unix', socketPath: ctx.engine.socketPath });
  const hub = new TimedClient(ctx.tokenTarget);
  const rssPids = { hub: ctx.pids.hub!, agent: ctx.pids.agent! };
  const cpuPids = { dockerd: ctx.pids.dockerd! };
  const kinds = { export: `/containers/${big.id}/export`, archive: `/containers/${big.id}/archive?path=/big` };
  const relay = ctx.relay ? new TimedClient(ctx.relay.target) : null;
  const runs: Record<string, { direct: TransferResult[]; hub: TransferResult[]; nativeRelay: TransferResult[] }> = {
    export: { direct: [], hub: [], nativeRelay: [] },
    archive: { direct: [], hub: [], nativeRelay: [] },
  };
  try {
    for (let rep = 0; rep < STREAM_REPS; rep++) {
      for (const [kind, path] of Object.entries(kinds)) {
        log(`stream: ${kind} rep ${rep + 1}/${STREAM_REPS}: direct`);
        const d = await transfer('direct', direct, path, rssPids, cpuPids);
        log(`stream: ${kind} direct ${d.MBps} MB/s; through the hub`);
        const h = await transfer('hub', hub, `/docker/nodes/${NODE}${path}`, rssPids, cpuPids);
        log(`stream: ${kind} hub ${h.MBps} MB/s (hub RSS +${(h.rss.hub!.deltaBytes / MiB).toFixed(1)} MiB, agent +${(h.rss.agent!.deltaBytes / MiB).toFixed(1)} MiB)`);
        if (h.bytes !== d.bytes) throw new Error(`${kind}: the hub delivered ${h.bytes} bytes, the engine ${d.bytes}`);
        runs[kind]!.direct.push(d);
        runs[kind]!.hub.push(h);
        if (relay) {
          const n = await transfer('nativeRelay', relay, path, rssPids, { ...cpuPids, ...ctx.relay!.pids });
          log(`stream: ${kind} native relay ${n.MBps} MB/s`);
          if (n.bytes !== d.bytes) throw new Error(`${kind}: the native relay delivered ${n.bytes} bytes, the engine ${d.bytes}`);
          runs[kind]!.nativeRelay.push(n);
        }
      }
    }
  } finally {
    direct.close();
    hub.close();
    relay?.close();
  }
  const summary = Object.fromEntries(
    Object.entries(runs).map(([kind, r]) => {
      const dMB = median(r.direct.map((x) => x.MBps));
      const hMB = median(r.hub.map((x) => x.MBps));
      const nMB = r.nativeRelay.length > 0 ? median(r.nativeRelay.map((x) => x.MBps)) : null;
      const maxDelta = (proc: string): number => Math.max(...r.hub.map((x) => x.rss[proc]!.deltaBytes));
      return [
        kind,
        {
          bytes: r.hub[0]!.bytes,
          directMBps: dMB,
          hubMBps: hMB,
          ratio: round(hMB / dMB, 3),
          nativeRelayMBps: nMB,
          nativeRelayRatio: nMB === null ? null : round(nMB / dMB, 3),
          hubToNativeRelay: nMB === null ? null : round(hMB / nMB, 3),
          hubRssDeltaMaxBytes: maxDelta('hub'),
          agentRssDeltaMaxBytes: maxDelta('agent'),
          withinTarget: { ratio: hMB / dMB >= TARGETS.streamRatio, rss: maxDelta('hub') <= TARGETS.streamRssDeltaBytes && maxDelta('agent') <= TARGETS.streamRssDeltaBytes },
        },
      ];
    }),
  );
  return { bigFile: big, repetitions: STREAM_REPS, summary, runs };
}

// ---------------------------------------------------------------------------------------------
// 50 ms RTT between hub and agent

const NS_LISTENER = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.resume(); }).listen(Number(port), host, () => console.log('listening'));
`;
const NS_SENDER = `
const net = require('node:net');
const [host, port, total] = process.argv.slice(1);
const chunk = require('node:crypto').randomBytes(1 << 20);
let left = Number(total);
const s = net.connect({ host, port: Number(port) }, () => {
  const pump = () => { while (left > 0) { left -= chunk.length; if (!s.write(chunk)) return void s.once('drain', pump); } s.end(); };
  pump();
});
s.on('close', () => process.exit(0));
`;

/** Plain TCP throughput from inside the namespace to the root side: the link's own ceiling. */
async function tcpBaseline(ns: DelayedNetns, bytes: number): Promise<{ bytes: number; seconds: number; MBps: number }> {
  let server: Server | null = null;
  let sender: Child | null = null;
  try {
    const port = await freePort(ns.rootAddr);
    let received = 0;
    let firstAt = 0;
    const done = new Promise<number>((resolve, reject) => {
      server = createServer((s) => {
        s.on('data', (c: Buffer) => {
          if (received === 0) firstAt = performance.now();
          received += c.length;
        });
        s.once('end', () => resolve(performance.now()));
        s.once('error', reject);
      });
      server.listen(port, ns.rootAddr);
    });
    const t0 = performance.now();
    sender = startChild('ns-sender', 'ip', ['netns', 'exec', ns.name, process.execPath, '-e', NS_SENDER, ns.rootAddr, String(port), String(bytes)], { env: childEnv() });
    const endAt = await Promise.race([
      done,
      sleep(300_000).then(() => {
        throw new Error('TCP baseline took over 300 s');
      }),
    ]);
    const seconds = (endAt - (firstAt || t0)) / 1000;
    return { bytes: received, seconds: round(seconds, 3), MBps: round(received / MB / seconds, 1) };
  } finally {
    await sender?.stop(2_000);
    (server as Server | null)?.close();
  }
}

async function rttPhase(ctx: Ctx, big: BigContainer): Promise<Record<string, unknown>> {
  const tag = process.pid.toString(36);
  log(`rtt: netns dfbench-${tag}, veth, ${RTT_ONE_WAY_MS} ms each way`);
  const ns = await createDelayedNetns({ tag, subnetPrefix: RTT_SUBNET, delayMs: RTT_ONE_WAY_MS });
  let listener: Child | null = null;
  let hub2: HubProcess | null = null;
  let agent2: Child | null = null;
  try {
    log(`rtt: delay by ${ns.method === 'netem' ? 'netem' : 'NFQUEUE delay line (this kernel has no sch_netem)'}`);
    const ping = ns.ping(10);
    listener = startChild('ns-listener', 'ip', ['netns', 'exec', ns.name, process.execPath, '-e', NS_LISTENER, ns.nsAddr, '7777'], { env: childEnv() });
    await listener.waitForLine(/^listening/, 15_000);
    const tcpRtt = summarize(await tcpConnectRtt(ns.nsAddr, 7777, 10));
    log(`rtt: ping avg ${ping?.avgMs ?? 'n/a'} ms, TCP connect p50 ${tcpRtt.p50} ms`);
    await listener.stop(2_000);
    listener = null;
    if (ping && (ping.avgMs < 2 * RTT_ONE_WAY_MS * 0.9 || ping.avgMs > 2 * RTT_ONE_WAY_MS * 1.5)) throw new Error(`RTT ${ping.avgMs} ms is not ~${2 * RTT_ONE_WAY_MS} ms`);

    log('rtt: plain TCP over the link (baseline)');
    const tcp = await tcpBaseline(ns, big.fileBytes);
    log(`rtt: plain TCP ${tcp.MBps} MB/s`);

    const dir = await mkdtemp(join(tmpdir(), 'dockfleet-bench-gw-rtt-'));
    tempDirs.add(dir);
    hub2 = await startHubProcess(dir, `${ns.rootAddr}:${await freePort(ns.rootAddr)}`, 'hub-rtt');
    agent2 = await startAgentProcess({ hub: hub2, name: FAR_NODE, stateDir: join(dir, 'agent'), docker: ctx.engine.dockerHost, policyFile: ctx.policyFile, netns: ns.name });
    // The agent must really be in the namespace: its hub connection comes from the ns address.
    const target: Target = { kind: 'https', base: hub2.url, caPem: hub2.caPem, headers: { authorization: `Bearer ${hub2.token}` } };
    const client = new TimedClient(target);
    try {
      for (let i = 0; i < 5; i++) await client.request(`/docker/nodes/${FAR_NODE}/_ping`);
      const pings: number[] = [];
      for (let i = 0; i < 50; i++) {
        const r = await client.request(`/docker/nodes/${FAR_NODE}/_ping`);
        if (r.status !== 200) throw new Error(`far _ping: HTTP ${r.status}`);
        pings.push(r.ms);
      }
      const pingMs = summarize(pings);
      log(`rtt: /_ping through the far node p50 ${pingMs.p50} ms`);
      const delayBefore = ns.delayStats();
      log('rtt: 1 GiB export through the hub over the 50 ms link');
      const exp = await transfer('hub-rtt', client, `/docker/nodes/${FAR_NODE}/containers/${big.id}/export`, { hub: hub2.child.pid, agent: agent2.pid }, { dockerd: ctx.pids.dockerd! });
      log(`rtt: export ${exp.MBps} MB/s`);
      return {
        netns: ns.name,
        link: { rootAddr: ns.rootAddr, nsAddr: ns.nsAddr, delayEachWayMs: RTT_ONE_WAY_MS, delayMethod: ns.method, ping, tcpConnectRttMs: tcpRtt },
        farPingThroughHubMs: pingMs,
        plainTcpBaseline: tcp,
        exportThroughHub: exp,
        ratioToPlainTcp: round(exp.MBps / tcp.MBps, 3),
        withinTarget: exp.MBps >= TARGETS.rttMBps,
        delayStats: { before: delayBefore, after: ns.delayStats() },
      };
    } finally {
      client.close();
    }
  } finally {
    await listener?.stop(2_000);
    await agent2?.stop(5_000);
    await hub2?.child.stop(5_000);
    ns.destroy();
    log('rtt: namespace and veth removed');
  }
}

// ---------------------------------------------------------------------------------------------
// many at once

interface Background {
  bytes(): number;
  stop(): Promise<{ completed: number; bytes: number }>;
}

/** Exports the big container over and over (through the hub or straight from the engine) until stopped. */
function exportLoop(target: Target, path: string): Background {
  const client = new TimedClient(target);
  const abort = new AbortController();
  let bytes = 0;
  let completed = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await client.request(path, { signal: abort.signal, timeoutMs: 120_000, onData: (n) => (bytes += n) });
        if (res.status !== 200) throw new Error(`export: HTTP ${res.status}`);
        completed++;
      } catch (err) {
        if (!stopped) throw err;
      }
    }
  })();
  loop.catch(() => {});
  return {
    bytes: () => bytes,
    async stop() {
      stopped = true;
      abort.abort();
      await loop.catch((err: Error) => log(`export loop failed: ${err.message}`));
      client.close();
      return { completed, bytes };
    },
  };
}

async function runLoad(
  ctx: Ctx,
  label: string,
  target: Target,
  path: string,
  intervalMs: number,
  withExport: { target: Target; path: string } | null,
  clients = MANY_CLIENTS,
): Promise<Record<string, unknown>> {
  log(`many: ${label}`);
  const child = startChild('load-client', process.execPath, ['--import', 'tsx', LOAD_CLIENT], { cwd: ROOT, env: childEnv() });
  let bg: Background | null = null;
  try {
    child.proc.stdin!.write(`${JSON.stringify({ target, path, clients, durationMs: MANY_MS, intervalMs })}\n`);
    await child.waitForLine(/^ready$/, 60_000);
    let bgBytes0 = 0;
    if (withExport) {
      bg = exportLoop(withExport.target, withExport.path);
      // Let the export reach full flow before the small calls start.
      await sleep(1_500);
      if (bg.bytes() === 0) throw new Error('the export did not start within 1.5 s');
      bgBytes0 = bg.bytes();
    }
    const sampler = startSampler({ hub: ctx.pids.hub!, agent: ctx.pids.agent!, dockerd: ctx.pids.dockerd!, loadClient: child.pid, exportClient: process.pid }, 250);
    const resultLine = child.waitForLine(/^\{/, MANY_MS + 90_000);
    const t0 = performance.now();
    child.proc.stdin!.write('go\n');
    const { line } = await resultLine;
    const seconds = (performance.now() - t0) / 1000;
    const windows = sampler.stop();
    const exportDuring = bg ? round((bg.bytes() - bgBytes0) / MB / seconds, 1) : null;
    const bgDone = bg ? await bg.stop() : null;
    bg = null;
    const result = JSON.parse(line) as LoadResult;
    log(
      `many: ${label}: p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ${result.requestsPerSecond} req/s, ${result.errors} errors${exportDuring !== null ? `, export ${exportDuring} MB/s meanwhile` : ''}`,
    );
    return {
      label,
      ...result,
      exportMBpsDuringRun: exportDuring,
      exportsCompleted: bgDone?.completed ?? null,
      cpuPercent: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, w.cpuPercent])),
      peakRssBytes: Object.fromEntries(
        Object.entries(windows)
          .filter(([k]) => k === 'hub' || k === 'agent')
          .map(([k, w]) => [k, w.peakRss]),
      ),
    };
  } finally {
    if (bg) await bg.stop();
    await child.stop(2_000);
  }
}

/**
 * One client, one `/_ping` every 20 ms while an export streams (its own keep-alive connection,
 * in a separate load-generator process like the many-clients load), through the hub with the
 * export through the same agent, and direct with the export straight from the engine.
 */
async function pingsDuringExport(
  ctx: Ctx,
  direct: Target,
  hubExport: { target: Target; path: string },
  directExport: { target: Target; path: string },
  relayExport: { target: Target; path: string } | null,
): Promise<Record<string, unknown>> {
  const runOne = (label: string, target: Target, path: string, exp: { target: Target; path: string }): Promise<Record<string, unknown>> => runLoad(ctx, label, target, path, PING_INTERVAL_MS, exp, 1);
  return {
    intervalMs: PING_INTERVAL_MS,
    direct: await runOne('one client, /_ping every 20 ms, direct, direct export running', direct, '/_ping', directExport),
    hub: await runOne('one client, /_ping every 20 ms, hub, export through the same agent', ctx.tokenTarget, `/docker/nodes/${NODE}/_ping`, hubExport),
    ...(relayExport ? { nativeRelay: await runOne('one client, /_ping every 20 ms, native relay, export through it', relayExport.target, '/_ping', relayExport) } : {}),
  };
}

async function many(ctx: Ctx, big: BigContainer): Promise<Record<string, unknown>> {
  await assertRunning(ctx.engine);
  const direct: Target = { kind: 'unix', socketPath: ctx.engine.socketPath };
  const hubExport = { target: ctx.tokenTarget, path: `/docker/nodes/${NODE}/containers/${big.id}/export` };
  const directExport = { target: direct, path: `/containers/${big.id}/export` };
  const hubPath = `/docker/nodes/${NODE}/containers/json`;
  const relayExport = ctx.relay ? { target: ctx.relay.target, path: `/containers/${big.id}/export` } : null;
  const variants = async (intervalMs: number): Promise<Record<string, Record<string, unknown>>> => {
    const how = intervalMs === 0 ? 'back to back' : `1 call per ${intervalMs} ms each`;
    return {
      direct: await runLoad(ctx, `${MANY_CLIENTS} clients ${how}, direct`, direct, '/containers/json', intervalMs, null),
      directWithExport: await runLoad(ctx, `${MANY_CLIENTS} clients ${how}, direct, direct export running`, direct, '/containers/json', intervalMs, directExport),
      hub: await runLoad(ctx, `${MANY_CLIENTS} clients ${how}, hub`, ctx.tokenTarget, hubPath, intervalMs, null),
      hubWithExport: await runLoad(ctx, `${MANY_CLIENTS} clients ${how}, hub, export running`, ctx.tokenTarget, hubPath, intervalMs, hubExport),
      ...(relayExport
        ? { nativeRelayWithExport: await runLoad(ctx, `${MANY_CLIENTS} clients ${how}, native relay, export through it`, relayExport.target, '/containers/json', intervalMs, relayExport) }
        : {}),
    };
  };
  const pingDuringExport = await pingsDuringExport(ctx, direct, hubExport, directExport, relayExport);
  const closedLoop = await variants(0);
  const paced: Array<Record<string, unknown>> = [];
  for (const intervalMs of MANY_INTERVALS) paced.push({ intervalMsPerClient: intervalMs, ...(await variants(intervalMs)) });
  const p99 = (r: Record<string, unknown>): number => (r.latencyMs as LatencySummary).p99;
  return {
    clients: MANY_CLIENTS,
    durationMs: MANY_MS,
    pingDuringExport,
    closedLoop,
    paced,
    withinTarget: {
      closedLoopWithExport: p99(closedLoop.hubWithExport!) < TARGETS.manyP99Ms,
      ...Object.fromEntries(paced.map((p) => [`paced${p.intervalMsPerClient}msWithExport`, p99(p.hubWithExport as Record<string, unknown>) < TARGETS.manyP99Ms])),
    },
  };
}

// ---------------------------------------------------------------------------------------------

const mib = (b: number): string => (b / MiB).toFixed(1);

function printSummary(r: Record<string, any>): void {
  const out: string[] = [''];
  const ok = (b: boolean): string => (b ? 'ok' : 'MISSES TARGET');
  if (r.small) {
    const table = (title: string, pick: (e: SmallEndpointResult) => SmallSeries): void => {
      out.push(title, '  endpoint          direct p50/p99     hub token p50/p99 (Δ)                  hub cert p50/p99 (Δ)                   native relay p50/p99 (Δ)');
      for (const e of r.small.endpoints as SmallEndpointResult[]) {
        const { latencyMs: l, overheadMs: o } = pick(e);
        const d = (k: string): string =>
          l[k]
            ? `${l[k]!.p50.toFixed(3)} / ${l[k]!.p99.toFixed(3)} (+${o[k]!.p50.toFixed(3)} / +${o[k]!.p99.toFixed(3)}) ${ok(o[k]!.p50 <= TARGETS.smallP50OverheadMs && o[k]!.p99 <= TARGETS.smallP99OverheadMs)}`
            : 'n/a';
        out.push(`  ${e.path.padEnd(16)}  ${`${l.direct!.p50.toFixed(3)} / ${l.direct!.p99.toFixed(3)}`.padEnd(17)}  ${d('hubToken').padEnd(37)}  ${d('hubCert').padEnd(37)}  ${d('nativeRelay')}`);
      }
    };
    table(`Small calls, ${r.small.requestsPerClient} sequential requests each over keep-alive (${r.small.runningContainers} running containers). ms:`, (e) => e);
    const first = (r.small.endpoints as SmallEndpointResult[])[0];
    if (first) table(`Spaced: ${first.spaced.requestsPerClient} each, ${first.spaced.gapMs} ms of silence after every answer. ms:`, (e) => e.spaced);
    out.push(`  targets: p50 ≤ +${TARGETS.smallP50OverheadMs} ms, p99 ≤ +${TARGETS.smallP99OverheadMs} ms`);
  }
  if (r.stream) {
    out.push('', `Streams (${mib(r.stream.bigFile.fileBytes)} MiB file from ${r.stream.bigFile.source}), median of ${r.stream.repetitions}:`);
    for (const [kind, s] of Object.entries(r.stream.summary as Record<string, any>)) {
      out.push(
        `  ${kind.padEnd(8)} direct ${s.directMBps} MB/s, hub ${s.hubMBps} MB/s, ratio ${s.ratio} ${ok(s.withinTarget.ratio)}; RSS peak−idle hub +${mib(s.hubRssDeltaMaxBytes)} MiB, agent +${mib(s.agentRssDeltaMaxBytes)} MiB ${ok(s.withinTarget.rss)}`,
      );
      if (s.nativeRelayMBps !== null)
        out.push(`  ${''.padEnd(8)} native relay (two nginx, TLS both hops) ${s.nativeRelayMBps} MB/s, ratio ${s.nativeRelayRatio}; hub / native relay ${s.hubToNativeRelay}`);
    }
    out.push(`  targets: ratio ≥ ${TARGETS.streamRatio}, RSS delta ≤ ${mib(TARGETS.streamRssDeltaBytes)} MiB`);
  }
  if (r.rtt) {
    const t = r.rtt;
    out.push('', `50 ms RTT link (ping avg ${t.link.ping?.avgMs ?? 'n/a'} ms, TCP connect p50 ${t.link.tcpConnectRttMs.p50} ms; /_ping through the far node p50 ${t.farPingThroughHubMs.p50} ms):`);
    out.push(`  export through the hub ${t.exportThroughHub.MBps} MB/s ${ok(t.withinTarget)} (target ≥ ${TARGETS.rttMBps}); plain TCP on the same link ${t.plainTcpBaseline.MBps} MB/s`);
  }
  if (r.many) {
    out.push('', `Many at once: ${r.many.clients} clients on /containers/json for ${r.many.durationMs / 1000} s. p50 / p99 ms, req/s:`);
    const line = (name: string, x: any): string =>
      `  ${name.padEnd(36)} ${String(x.latencyMs.p50).padStart(9)} / ${String(x.latencyMs.p99).padStart(9)}  ${String(x.requestsPerSecond).padStart(8)} req/s  errors ${x.errors}${x.exportMBpsDuringRun !== null ? `  (export ${x.exportMBpsDuringRun} MB/s meanwhile)` : ''}`;
    const group = (label: string, g: any): void =>
      void out.push(
        line(`${label}, direct`, g.direct),
        line(`${label}, direct + export`, g.directWithExport),
        line(`${label}, hub`, g.hub),
        line(`${label}, hub + export`, g.hubWithExport),
        ...(g.nativeRelayWithExport ? [line(`${label}, native relay + export`, g.nativeRelayWithExport)] : []),
      );
    if (r.many.pingDuringExport)
      out.push(
        line('one /_ping per 20 ms + export, direct', r.many.pingDuringExport.direct),
        line('one /_ping per 20 ms + export, hub', r.many.pingDuringExport.hub),
        ...(r.many.pingDuringExport.nativeRelay ? [line('one /_ping per 20 ms + export, relay', r.many.pingDuringExport.nativeRelay)] : []),
      );
    group('closed loop', r.many.closedLoop);
    for (const p of r.many.paced) group(`paced 1/${p.intervalMsPerClient / 1000} s`, p);
    out.push(
      `  target: p99 < ${TARGETS.manyP99Ms} ms with the export: ${Object.entries(r.many.withinTarget)
        .map(([k, v]) => `${k} ${ok(v as boolean)}`)
        .join(', ')}`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const watchdog = setTimeout(() => {
    process.stderr.write(`docker-gateway bench: still running after ${WATCHDOG_MS / 1000} s; giving up\n`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  const machine = machineFacts();
  log('starting a private dockerd');
  const [engine] = await startEngines(1, { prefix: 'gwbench' });
  const work = await mkdtemp(join(tmpdir(), 'dockfleet-bench-gw-'));
  tempDirs.add(work);
  let hub: HubProcess | null = null;
  let agent: Child | null = null;
  let relay: RelayChain | null = null;
  const result: Record<string, unknown> = {};
  try {
    const policyFile = join(work, 'policy.json');
    await writeFile(policyFile, policyJson());
    hub = await startHubProcess(join(work, 'hub'), `127.0.0.1:${await freePort()}`);
    agent = await startAgentProcess({ hub, name: NODE, stateDir: join(work, 'agent'), docker: engine!.dockerHost, policyFile });
    log(`hub ${hub.url} (pid ${hub.child.pid}), agent ${NODE} (pid ${agent.pid}), dockerd pid ${engine!.pid}`);
    const nginx = findNginx();
    if ('missing' in nginx) {
      log(`native relay reference skipped: ${nginx.missing}`);
      result.nativeRelay = { skipped: nginx.missing };
    } else {
      // A reference, not the subject: if it cannot start, the bench goes on without it.
      relay = await startRelayChain(nginx, engine!.socketPath, join(work, 'relay')).catch((err: Error) => {
        log(`native relay reference skipped: ${err.message}`);
        result.nativeRelay = { skipped: err.message };
        return null;
      });
      if (relay) {
        log(`native relay reference: ${relay.version}, pids ${relay.pids.relayHub} (hub role), ${relay.pids.relayAgent} (agent role)`);
        result.nativeRelay = { nginx: nginx.binary, version: relay.version, tls: 'TLS 1.3, TLS_AES_128_GCM_SHA256 on both hops', proxyBufferBytes: 256 * 1024 };
      }
    }
    const ctx: Ctx = {
      engine: engine!,
      work,
      policyFile,
      hub,
      agent,
      tokenTarget: { kind: 'https', base: hub.url, caPem: hub.caPem, headers: { authorization: `Bearer ${hub.token}` } },
      certTarget: await clientCertTarget(hub),
      pids: { hub: hub.child.pid, agent: agent.pid, dockerd: engine!.pid },
      relay,
    };
    if (PHASES.has('small') || PHASES.has('many')) await startSmallContainers(engine!);
    if (PHASES.has('small')) result.small = await smallCalls(ctx);
    let big: BigContainer | null = null;
    if (PHASES.has('stream') || PHASES.has('rtt') || PHASES.has('many')) {
      log(`big: writing ${BIG_MIB} MiB into a container`);
      big = await makeBigContainer(engine!);
      log(`big: ${big.fileBytes} bytes from ${big.source} in ${big.fillSeconds} s`);
    }
    if (PHASES.has('stream')) result.stream = await streams(ctx, big!);
    if (PHASES.has('many')) result.many = await many(ctx, big!);
    if (PHASES.has('rtt')) result.rtt = await rttPhase(ctx, big!);
  } finally {
    await relay?.stop();
    await agent?.stop(5_000);
    await hub?.child.stop(5_000);
    await stopEngines([engine!]);
    await rm(work, { recursive: true, force: true });
    tempDirs.delete(work);
  }
  const out = {
    bench: 'docker-gateway',
    timestamp: new Date().toISOString(),
    durationMs: Date.now() - started,
    machine,
    config: {
      phases: [...PHASES],
      smallN: SMALL_N,
      smallRounds: SMALL_ROUNDS,
      containers: CONTAINERS,
      bigMiB: BIG_MIB,
      streamReps: STREAM_REPS,
      manyClients: MANY_CLIENTS,
      manyMs: MANY_MS,
      manyIntervalsMs: MANY_INTERVALS,
    },
    targets: TARGETS,
    notes: [
      "Client, hub and agent are three processes; the engine is a private dockerd (vfs) on a unix socket. Everything shares this machine's cores.",
      'Latency is client-observed: request written → last body byte read, over keep-alive connections opened and warmed before measuring.',
      'small: the three clients run in interleaved blocks (direct, token, cert) × rounds; cpuMicrosPerRequest is the CPU time each process used per request during its blocks.',
      'MB/s is 10^6 bytes per second of body, from request written to last byte read. RSS is VmRSS sampled every 100 ms; idle is the median of 5 samples just before the transfer. stream.summary medians are nearest-rank: with 2 repetitions, the slower one; every run is in stream.runs.',
      'rtt: netem on both veth ends (tc qdisc add dev … root netem delay 25ms, default limit); plain TCP baseline is one node socket sending the same byte count from inside the namespace to the root side.',
      'many: each client has its own keep-alive connection in a separate load-generator process; closed loop = next request as soon as the answer is read; paced = at most one request per interval per client. The export runs in the bench process; "direct + export" streams it straight from the engine socket, the reference for what the export alone does to the engine and the machine.',
    ],
    ...result,
  };
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  printSummary(out);
  process.stdout.write(`\nwrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}

runBench('docker-gateway', main);
