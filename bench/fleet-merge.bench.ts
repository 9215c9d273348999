/**
 * Fleet merge: GET /docker/fleet/containers/json over 100 simulated nodes (real channels from
 * bench/agent-simulator.ts, each answering the Docker list call with 20 fake containers), then
 * the same with 5 nodes stalled (their channels and heartbeats stay up, but they never answer a
 * Docker call), so the hub's per-node deadline (3 s by default) applies and the answer must name
 * exactly those 5 in X-Dockfleet-Missing-Nodes.
 *
 *   node --import tsx bench/fleet-merge.bench.ts
 *
 * Baseline in the same run: the same list from one node through the hub
 * (/docker/nodes/NAME/containers/json). The hub (`node bin/dockfleet.js hub`) and the simulator
 * are separate processes. Writes bench/results/fleet-merge.json and prints a summary.
 *
 * Knobs (env): BENCH_NODES=100 BENCH_CONTAINERS_PER_NODE=20 BENCH_DEAD=5 BENCH_REQUESTS=300
 * BENCH_DEAD_REQUESTS=20 BENCH_CONCURRENT=4 BENCH_CPU_PROF=DIR. Kills only the pids it started.
 */
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT, childEnv, startHubProcess, type HubProcess } from './lib/dockfleet-procs.ts';
import { TimedClient, type Target } from './lib/http-timing.ts';
import { HubHttp, runPool } from './lib/hub-http.ts';
import { machineFacts } from './lib/machine.ts';
import { freePort, sleep, startChild, type Child } from './lib/proc.ts';
import { startSampler } from './lib/sampler.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';
import { envInt } from './lib/env-int.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { removeHubData } from '../test/support/hub-fixture.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'fleet-merge.json');
const envCount = (name: string, fallback: number): number => envInt(name, fallback, { integer: true });
const NODES = envCount('BENCH_NODES', 100);
const PER_NODE = envCount('BENCH_CONTAINERS_PER_NODE', 20);
const DEAD = envCount('BENCH_DEAD', 5);
const REQUESTS = envCount('BENCH_REQUESTS', 300);
const DEAD_REQUESTS = envCount('BENCH_DEAD_REQUESTS', 20);
const CONCURRENT = Math.max(1, envCount('BENCH_CONCURRENT', 4));
const DEADLINE_MS = 3_000;
const PREFIX = 'fm';
const MISSING = 'x-dockfleet-missing-nodes';
const NODE_LABEL = 'dockfleet.node';

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

interface Checked {
  ms: number;
  bytes: number;
}

/** One fleet (or node) call, checked: status, item count, labels, and the missing-nodes header. */
async function call(client: TimedClient, path: string, expect: { items: number; missing: string[] | null; nodes?: number }): Promise<Checked> {
  const res = await client.request(path, { keepBody: true, timeoutMs: 30_000 });
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${res.body?.toString().slice(0, 200)}`);
  const items = JSON.parse(res.body!.toString()) as Array<{ Labels?: Record<string, string> }>;
  if (items.length !== expect.items) throw new Error(`${path}: ${items.length} items, expected ${expect.items}`);
  if (expect.missing !== null) {
    const header = String(res.headers[MISSING] ?? '');
    const got = header === '' ? [] : header.split(',').sort();
    if (got.join(',') !== [...expect.missing].sort().join(',')) throw new Error(`${path}: ${MISSING} is "${header}", expected "${expect.missing.join(',')}"`);
    const labelled = new Set(items.map((i) => i.Labels?.[NODE_LABEL]));
    for (const m of expect.missing) if (labelled.has(m)) throw new Error(`${path}: items from missing node ${m}`);
    if (expect.nodes !== undefined && labelled.size !== expect.nodes) throw new Error(`${path}: items from ${labelled.size} nodes, expected ${expect.nodes}`);
  }
  return { ms: res.ms, bytes: res.bytes };
}

async function measure(target: Target, path: string, total: number, concurrency: number, expect: Parameters<typeof call>[2], pids: Record<string, number>): Promise<Record<string, unknown>> {
  const client = new TimedClient(target, concurrency);
  const samples: number[] = [];
  let bytes = 0;
  const sampler = startSampler(pids, 250);
  const t0 = performance.now();
  try {
    await runPool(total, concurrency, async () => {
      const r = await call(client, path, expect);
      samples.push(r.ms);
      bytes = r.bytes;
    });
  } finally {
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const w = sampler.stop();
  return {
    path,
    requests: total,
    concurrency,
    responseBytes: bytes,
    latencyMs: summarize(samples),
    requestsPerSecond: round(total / seconds),
    cpuPercent: Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.cpuPercent])),
    peakRssBytes: Object.fromEntries(Object.entries(w).map(([k, v]) => [k, v.peakRss])),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const watchdog = setTimeout(() => {
    process.stderr.write('fleet-merge bench: still running after 600 s; giving up\n');
    process.exit(1);
  }, 600_000);
  watchdog.unref();
  const machine = machineFacts();
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-bench-fleet-'));
  tempDirs.add(dataDir);
  let hub: HubProcess | null = null;
  let sim: Child | null = null;
  const result: Record<string, unknown> = {};
  try {
    hub = await startHubProcess(dataDir, `127.0.0.1:${await freePort()}`);
    log(`hub ${hub.url} (pid ${hub.child.pid}); simulating ${NODES} nodes with ${PER_NODE} containers each`);
    sim = startChild(
      'agent-simulator',
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'bench', 'agent-simulator.ts'),
        '--hub',
        hub.url,
        '--ca',
        hub.caFile,
        '--token-file',
        join(dataDir, 'admin.token'),
        '--count',
        String(NODES),
        '--prefix',
        PREFIX,
        '--docker-containers',
        String(PER_NODE),
        '--control-stdin',
        '--watch-stdin',
      ],
      { cwd: ROOT, env: childEnv() },
    );
    const allConnected = sim.waitForLine(new RegExp(`^simulated ${NODES} connected$`), 180_000);
    await sim.waitForLine(/^enrolled \d+/, 180_000);
    await allConnected;
    const api = new HubHttp(hub.url, hub.caPem, hub.token, 1);
    for (let i = 0; ; i++) {
      const nodes = await api.json<Array<{ name: string; status: string }>>('GET', '/api/v1/nodes');
      if (nodes.filter((n) => n.status === 'online').length === NODES) break;
      if (i > 300) throw new Error('not every simulated node is online in the hub');
      await sleep(100);
    }
    api.close();
    log(`${NODES} nodes online`);

    const width = String(NODES - 1).length;
    const names = Array.from({ length: NODES }, (_, i) => `${PREFIX}-${String(i).padStart(width, '0')}`);
    const target: Target = { kind: 'https', base: hub.url, caPem: hub.caPem, headers: { authorization: `Bearer ${hub.token}` } };
    const pids = { hub: hub.child.pid, simulator: sim.pid };
    const fleetPath = '/docker/fleet/containers/json';
    const all = { items: NODES * PER_NODE, missing: [] as string[], nodes: NODES };

    log('warm-up');
    const warm = new TimedClient(target, 1);
    for (let i = 0; i < 30; i++) await call(warm, fleetPath, all);
    // The Docker CLI sends a versioned path; the simulator answers both forms.
    await call(warm, '/docker/fleet/v1.41/containers/json', all);
    for (let i = 0; i < 30; i++) await call(warm, `/docker/nodes/${names[0]}/containers/json`, { items: PER_NODE, missing: null });
    warm.close();

    log(`baseline: one node through the hub × ${REQUESTS}`);
    result.baselineOneNode = await measure(target, `/docker/nodes/${names[0]}/containers/json`, REQUESTS, 1, { items: PER_NODE, missing: null }, pids);
    log(`all ${NODES} nodes answering: ${REQUESTS} sequential, then ${REQUESTS} with ${CONCURRENT} at once`);
    result.healthySequential = await measure(target, fleetPath, REQUESTS, 1, all, pids);
    result.healthyConcurrent = await measure(target, fleetPath, REQUESTS, CONCURRENT, all, pids);

    // Five nodes, spread over the list, stop answering Docker calls.
    const dead = Array.from({ length: DEAD }, (_, i) => names[Math.floor(((i + 0.5) * NODES) / DEAD)]!);
    const ack = sim.waitForLine(/^stalled \d+$/, 10_000);
    sim.proc.stdin!.write(`stall ${dead.join(',')}\n`);
    const { line } = await ack;
    if (line !== `stalled ${DEAD}`) throw new Error(`simulator said "${line}"`);
    log(`stalled ${dead.join(', ')}: ${DEAD_REQUESTS} sequential, then ${DEAD_REQUESTS * 2} with ${CONCURRENT} at once`);
    const partial = { items: (NODES - DEAD) * PER_NODE, missing: dead, nodes: NODES - DEAD };
    result.deadSequential = await measure(target, fleetPath, DEAD_REQUESTS, 1, partial, pids);
    result.deadConcurrent = await measure(target, fleetPath, DEAD_REQUESTS * 2, CONCURRENT, partial, pids);

    // They come back: every node answers again and none went offline meanwhile.
    const back = sim.waitForLine(/^unstalled 0$/, 10_000);
    sim.proc.stdin!.write(`unstall ${dead.join(',')}\n`);
    await back;
    const after = new TimedClient(target, 1);
    await call(after, fleetPath, all);
    after.close();
    const api2 = new HubHttp(hub.url, hub.caPem, hub.token, 1);
    const nodesAfter = await api2.json<Array<{ status: string }>>('GET', '/api/v1/nodes');
    api2.close();
    result.afterUnstall = { allAnswering: true, online: nodesAfter.filter((n) => n.status === 'online').length };
    result.deadNodes = dead;
  } finally {
    await sim?.stop(5_000);
    await hub?.child.stop(5_000);
    await removeHubData(dataDir);
    tempDirs.delete(dataDir);
  }
  const lat = (k: string): LatencySummary => (result[k] as { latencyMs: LatencySummary }).latencyMs;
  const out = {
    bench: 'fleet-merge',
    timestamp: new Date().toISOString(),
    durationMs: Date.now() - started,
    machine,
    config: { nodes: NODES, containersPerNode: PER_NODE, deadNodes: DEAD, requests: REQUESTS, deadRequests: DEAD_REQUESTS, concurrent: CONCURRENT, hubFleetDeadlineMs: DEADLINE_MS },
    notes: [
      'Simulated nodes run the real agent channel (TLS, WebSocket, signed handshake, HTTP/2, heartbeats) in one simulator process; each answers GET /docker[/vX.Y]/containers/json with the same fixed list of fake containers (~1 KB of JSON each).',
      'Every answer is checked: HTTP 200, item count, dockfleet.node labels, and X-Dockfleet-Missing-Nodes equal (as a set) to the stalled nodes (empty when all answer).',
      'A stalled node keeps its channel and heartbeats but holds Docker requests unanswered; the hub cancels them at its per-node deadline.',
      'Latency is client-observed over keep-alive (request written → last body byte read); the JSON check runs after the clock stops.',
    ],
    ...result,
  };
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const row = (label: string, k: string): string => {
    const r = result[k] as { latencyMs: LatencySummary; requestsPerSecond: number; responseBytes: number; cpuPercent: Record<string, number> };
    return `  ${label.padEnd(44)} p50 ${String(r.latencyMs.p50).padStart(8)} ms  p99 ${String(r.latencyMs.p99).padStart(8)} ms  ${String(r.requestsPerSecond).padStart(6)} req/s  ${(r.responseBytes / 1e6).toFixed(2)} MB/answer  hub CPU ${r.cpuPercent.hub}%  simulator CPU ${r.cpuPercent.simulator}%`;
  };
  process.stdout.write(
    [
      '',
      `Fleet merge of containers/json, ${NODES} nodes × ${PER_NODE} containers:`,
      row('baseline: one node through the hub, sequential', 'baselineOneNode'),
      row('fleet, all answering, sequential', 'healthySequential'),
      row(`fleet, all answering, ${CONCURRENT} at once`, 'healthyConcurrent'),
      row(`fleet, ${DEAD} stalled, sequential`, 'deadSequential'),
      row(`fleet, ${DEAD} stalled, ${CONCURRENT} at once`, 'deadConcurrent'),
      `  X-Dockfleet-Missing-Nodes named exactly ${(result.deadNodes as string[]).join(',')} on all ${DEAD_REQUESTS * 3} answers with stalled nodes (and was empty on every other); per-node deadline ${DEADLINE_MS} ms: stalled p99 − deadline = ${round(lat('deadSequential').p99 - DEADLINE_MS)} ms`,
      '',
      `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      '',
    ].join('\n'),
  );
}

runBench('fleet-merge', main);
