/**
 * The edge holding idle WebSockets: 10,000 opened through the edge to the app (same rig as
 * edge-http: lib/edge-rig.ts), then left idle. Measured: the hub's and the agent's RSS per
 * connection (settled RSS after minus settled RSS before, over the count), the time to open them
 * all (a fixed number of handshakes in flight) and each one's upgrade latency, that every one is
 * still open and echoing after the idle wait, and how much RSS is handed back once they close.
 * Reference in the same run: Debian's nginx proxying the same WebSockets to the same app (as
 * many as its one process's open-files limit allows: it holds two descriptors per connection),
 * and the app's own RSS per connection.
 *
 *   node --import tsx bench/edge-websockets.bench.ts
 *
 * The client (this process) holds every connection; the hub gets --max-connections-per-address
 * above the count, and every process the bench starts runs with the open-files hard limit.
 * Knobs (env): BENCH_WS=10000 BENCH_WS_IN_FLIGHT=50 BENCH_WS_IDLE_MS=30000 BENCH_WS_HANDSHAKE_MS=10000.
 * Writes bench/results/edge-websockets.json.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import WebSocket from 'ws';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { EDGE_HOST, ensureOpenFiles, openFilesLimit, startEdgeRig, type EdgeRig } from './lib/edge-rig.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { rssBytes, sleep } from './lib/proc.ts';
import { summarize } from './lib/stats.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'edge-websockets.json');
const COUNT = envInt('BENCH_WS', 10_000);
const IN_FLIGHT = envInt('BENCH_WS_IN_FLIGHT', 50);
const IDLE_MS = envInt('BENCH_WS_IDLE_MS', 30_000);
const WARM = 200;
const HANDSHAKE_MS = envInt('BENCH_WS_HANDSHAKE_MS', 10_000);

const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

/** RSS of each process once it stops moving: samples 500 ms apart until four in a row lie within 1 MB (at most 30 s). */
async function settledRss(pids: Record<string, number>): Promise<Record<string, number>> {
  const history: Array<Record<string, number>> = [];
  const deadline = Date.now() + 30_000;
  for (;;) {
    history.push(Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, rssBytes(pid)])));
    const last = history.slice(-4);
    const still = last.length === 4 && Object.keys(pids).every((k) => Math.max(...last.map((h) => h[k]!)) - Math.min(...last.map((h) => h[k]!)) < 1e6);
    if (still || Date.now() > deadline) return history.at(-1)!;
    await sleep(500);
  }
}

interface Opened {
  sockets: WebSocket[];
  openMs: number[];
  totalMs: number;
  closedEarly: () => number;
  failed: number;
  firstFailure: string | null;
}

/** Opens `count` WebSockets to `port` (TLS, no SNI, Host bench.test), `IN_FLIGHT` handshakes at a time. */
async function openMany(port: number, caPem: string, count: number): Promise<Opened> {
  const sockets: WebSocket[] = [];
  const openMs: number[] = [];
  let closed = 0;
  let next = 0;
  const t0 = performance.now();
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const ws = new WebSocket(`wss://127.0.0.1:${port}/ws`, { ca: caPem, headers: { host: EDGE_HOST }, perMessageDeflate: false, handshakeTimeout: HANDSHAKE_MS });
      ws.once('open', () => {
        openMs.push(performance.now() - started);
        sockets.push(ws);
        ws.once('close', () => closed++);
        resolve();
      });
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  let firstFailure: string | null = null;
  let failed = 0;
  // After the first failure no new handshake starts (those in flight finish or fail): what opened stays open.
  await Promise.all(
    Array.from({ length: Math.min(IN_FLIGHT, count) }, async () => {
      while (next < count && firstFailure === null) {
        next++;
        await one().catch((err: Error) => {
          failed++;
          firstFailure ??= `${err.message} (with ${sockets.length} open)`;
        });
      }
    }),
  );
  return { sockets, openMs, totalMs: performance.now() - t0, closedEarly: () => closed, failed, firstFailure };
}

/** Every socket sends one message and must get it back. */
async function echoAll(sockets: WebSocket[]): Promise<number> {
  let ok = 0;
  await Promise.all(
    sockets.map(
      (ws, i) =>
        new Promise<void>((resolve) => {
          if (ws.readyState !== WebSocket.OPEN) return resolve();
          const text = `ping-${i}`;
          const timer = setTimeout(resolve, 30_000);
          ws.once('message', (data) => {
            clearTimeout(timer);
            if (data.toString() === text) ok++;
            resolve();
          });
          ws.send(text);
        }),
    ),
  );
  return ok;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
}

interface PathResult {
  count: number;
  /** How many opened; fewer than count when a handshake failed (then no more were tried). */
  opened: number;
  failed: number;
  firstFailure: string | null;
  openSeconds: number;
  opensPerSecond: number;
  upgradeMs: ReturnType<typeof summarize>;
  echoedAfterIdle: number;
  closedDuringIdle: number;
  rssBeforeMB: Record<string, number>;
  rssOpenMB: Record<string, number>;
  rssAfterCloseMB: Record<string, number>;
  bytesPerConnection: Record<string, number>;
}

async function measure(label: string, port: number, caPem: string, count: number, pids: Record<string, number>): Promise<PathResult> {
  // Warm-up: first handshakes, JIT and pools are not a per-connection cost.
  const warm = await openMany(port, caPem, Math.min(WARM, count));
  await closeAll(warm.sockets);
  const before = await settledRss(pids);
  log(`${label}: opening ${count} WebSockets, ${IN_FLIGHT} at a time`);
  const opened = await openMany(port, caPem, count);
  const n = opened.sockets.length;
  log(`${label}: ${n} open in ${round(opened.totalMs / 1000, 2)} s${opened.firstFailure ? `, then a handshake failed: ${opened.firstFailure}` : ''}; idle for ${IDLE_MS / 1000} s`);
  if (n === 0) throw new Error(`${label}: no WebSocket opened: ${opened.firstFailure}`);
  await sleep(IDLE_MS);
  const open = await settledRss(pids);
  const echoed = await echoAll(opened.sockets);
  const closedDuringIdle = opened.closedEarly();
  await closeAll(opened.sockets);
  const afterClose = await settledRss(pids);
  const mb = (r: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v / 1e6)]));
  const result: PathResult = {
    count,
    opened: n,
    failed: opened.failed,
    firstFailure: opened.firstFailure,
    openSeconds: round(opened.totalMs / 1000, 2),
    opensPerSecond: round(n / (opened.totalMs / 1000)),
    upgradeMs: summarize(opened.openMs),
    echoedAfterIdle: echoed,
    closedDuringIdle,
    rssBeforeMB: mb(before),
    rssOpenMB: mb(open),
    rssAfterCloseMB: mb(afterClose),
    bytesPerConnection: Object.fromEntries(Object.keys(pids).map((k) => [k, Math.round((open[k]! - before[k]!) / n)])),
  };
  log(`${label}: per connection ${JSON.stringify(result.bytesPerConnection)} B; upgrade p50 ${result.upgradeMs.p50} ms p99 ${result.upgradeMs.p99} ms; ${echoed}/${n} echoed after idle`);
  if (echoed !== n) throw new Error(`${label}: only ${echoed} of ${n} WebSockets echoed after ${IDLE_MS} ms idle (${closedDuringIdle} closed)`);
  return result;
}

async function main(): Promise<void> {
  const started = Date.now();
  ensureOpenFiles(COUNT + 2_000);
  const machine = machineFacts();
  const { hard } = openFilesLimit();
  // nginx holds two descriptors per proxied connection (client and upstream) in its one process.
  // (worker_connections counts both, and its upstream keep-alive pool besides).
  const nginxCount = Math.min(COUNT, Math.floor((hard - 1_200) / 2.5));
  log('starting a private engine, the app container, a hub with --edge-listen, an agent and nginx');
  const rig: EdgeRig = await startEdgeRig({ prefix: 'edgews', maxConnectionsPerAddress: COUNT + 1_000, nginxConnections: nginxCount * 2 + 1_000 });
  let out: Record<string, any>;
  try {
    const edge = await measure('edge', rig.edgePort, rig.hub.caPem, COUNT, { hub: rig.pids.hub, agent: rig.pids.agent, app: rig.pids.app });
    const nginx = await measure('nginx', rig.nginx.port, rig.nginx.caPem, nginxCount, { nginx: rig.pids.nginx, app: rig.pids.app });
    const nginxErrors = (await readFile(join(rig.work, 'nginx', 'error.log'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).slice(-5);
    if (nginxErrors.length > 0) log(`nginx error.log: ${nginxErrors.join(' | ')}`);
    out = {
      bench: 'edge-websockets',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine: { ...machine, nginx: rig.nginx.version, openFilesHardLimit: hard },
      config: { count: COUNT, inFlight: IN_FLIGHT, idleMs: IDLE_MS, warmUp: WARM, nginxCount },
      notes: [
        'bytesPerConnection: settled RSS with every WebSocket open and idle, minus settled RSS before (after a warm-up of 200 opened and closed), over the count.',
        'edge: client ⇄ TLS ⇄ hub edge port ⇄ one HTTP/2 stream on the agent link ⇄ agent ⇄ TCP ⇄ app; nginx: client ⇄ TLS ⇄ nginx (one worker) ⇄ TCP ⇄ app.',
        `nginx ran with ${nginxCount} connections: two descriptors each in one process under an open-files hard limit of ${hard}.`,
        'Every socket that opened echoed one message after the idle wait; closedDuringIdle counts any the edge or app dropped meanwhile.',
        'When a handshake fails (e.g. times out), no more are tried: the figures are then over the ones that opened (opened, firstFailure).',
      ],
      edge,
      nginx,
      nginxErrors,
      summary: {
        edgeOpened: edge.opened,
        edgeReachedCount: edge.opened === COUNT,
        edgeFirstFailure: edge.firstFailure,
        hubBytesPerConnection: edge.bytesPerConnection.hub,
        agentBytesPerConnection: edge.bytesPerConnection.agent,
        nginxBytesPerConnection: nginx.bytesPerConnection.nginx,
        appBytesPerConnection: edge.bytesPerConnection.app,
        edgeOpenSeconds: edge.openSeconds,
        nginxOpenSeconds: nginx.openSeconds,
      },
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const s = out.summary;
  process.stdout.write(
    [
      '',
      `edge-websockets: ${COUNT} idle WebSockets`,
      ...(s.edgeReachedCount ? [] : [`  edge: only ${s.edgeOpened} of ${COUNT} opened: ${s.edgeFirstFailure}`]),
      `  edge: hub ${s.hubBytesPerConnection} B + agent ${s.agentBytesPerConnection} B per connection; opened in ${s.edgeOpenSeconds} s (upgrade p50 ${out.edge.upgradeMs.p50} ms, p99 ${out.edge.upgradeMs.p99} ms)`,
      `  nginx (${out.config.nginxCount}): ${s.nginxBytesPerConnection} B per connection; opened in ${out.nginx.openSeconds} s`,
      `  app: ${s.appBytesPerConnection} B per connection`,
      `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      '',
    ].join('\n'),
  );
}

runBench('edge-websockets', main);
