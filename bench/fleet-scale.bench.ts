/**
 * Fleet scale: what N idle agents cost the hub, what a round trip through one of them costs
 * with N connected, and how fast N agents are back after the hub is killed and restarted.
 *
 *   node --import tsx bench/fleet-scale.bench.ts          (BENCH_AGENTS=100,1000 by default)
 *
 * The hub (`node bin/dockfleet.js hub`) and the simulated fleet (bench/agent-simulator.ts)
 * run as separate child processes so the hub's RSS and CPU are its own. Writes
 * bench/results/fleet-scale.json and prints a summary. Kills only the pids it started.
 *
 * Knobs (env): BENCH_AGENTS=100,1000  BENCH_SETTLE_MS=10000  BENCH_CPU_WINDOW_MS=20000
 *              BENCH_PINGS=2000  BENCH_CLIENTS=16  BENCH_CONNECT_CONCURRENCY=32
 */
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { HubHttp, runPool } from './lib/hub-http.ts';
import { cpuSeconds, freePort, peakRssBytes, rssBytes, sleep, startChild, type Child } from './lib/proc.ts';
import { median, summarize, type LatencySummary } from './lib/stats.ts';
import { envInt } from './lib/env-int.ts';
import { removeHubData } from '../test/support/hub-fixture.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results', 'fleet-scale.json');

const AGENTS = (process.env.BENCH_AGENTS ?? '100,1000')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => Number.isInteger(n) && n > 0);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 10_000);
const CPU_WINDOW_MS = envInt('BENCH_CPU_WINDOW_MS', 20_000);
const PINGS = envInt('BENCH_PINGS', 2000);
const CLIENTS = envInt('BENCH_CLIENTS', 16);
const CONNECT_CONCURRENCY = envInt('BENCH_CONNECT_CONCURRENCY', 32);
const RESTART_TARGET_MS = 30_000;

// Data dirs still to remove if the bench dies (the hub and simulator are SIGKILLed by lib/proc).
const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

interface HubProc {
  child: Child;
  url: string;
  readyAt: number;
  startedAt: number;
}

async function startHub(dataDir: string, port: number): Promise<HubProc> {
  const startedAt = Date.now();
  const child = startChild('hub', process.execPath, [join(ROOT, 'bin', 'dockfleet.js'), 'hub', '--data', dataDir, '--listen', `127.0.0.1:${port}`], {
    cwd: ROOT,
    env: { ...process.env },
  });
  const { line, at } = await child.waitForLine(/^hub ready /, 60_000);
  return { child, url: line.slice('hub ready '.length).trim(), readyAt: at, startedAt };
}

/** Median of `count` RSS samples `everyMs` apart. */
async function sampleRss(pid: number, count = 7, everyMs = 500): Promise<{ median: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await sleep(everyMs);
    samples.push(rssBytes(pid));
  }
  return { median: median(samples), samples };
}

/** CPU used by each pid over the window, in % of one core. */
async function measureCpu(pids: Record<string, number>, windowMs: number): Promise<Record<string, { percentOfCore: number; userS: number; systemS: number }>> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const t0 = process.hrtime.bigint();
  await sleep(windowMs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const out: Record<string, { percentOfCore: number; userS: number; systemS: number }> = {};
  for (const [k, pid] of Object.entries(pids)) {
    const after = cpuSeconds(pid);
    const user = after.user - before[k]!.user;
    const system = after.system - before[k]!.system;
    out[k] = { percentOfCore: round(((user + system) / seconds) * 100, 2), userS: round(user, 2), systemS: round(system, 2) };
  }
  return out;
}

interface NodeList {
  name: string;
  status: string;
}

/** Polls GET /api/v1/nodes until `n` nodes are online; returns when (ms epoch) it saw that. */
async function waitOnline(http: HubHttp, n: number, timeoutMs: number, everyMs = 200): Promise<{ at: number; polls: number }> {
  const deadline = Date.now() + timeoutMs;
  let polls = 0;
  let last = -1;
  let lastError = '';
  for (;;) {
    polls++;
    try {
      const nodes = await http.json<NodeList[]>('GET', '/api/v1/nodes', undefined, { timeoutMs: 10_000 });
      last = nodes.filter((x) => x.status === 'online').length;
      if (last >= n) return { at: Date.now(), polls };
    } catch (err) {
      // hub busy or connection reset: keep polling
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new Error(`only ${last < 0 ? 'unknown' : last} of ${n} nodes online after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    await sleep(everyMs);
  }
}

interface LatencyResult {
  clientMs: LatencySummary;
  roundTripMicros?: LatencySummary;
  errors: number;
  requestsPerSecond: number;
}

async function measureLatency(hubUrl: string, caPem: string, token: string, paths: () => string, total: number, clients: number, isPing: boolean): Promise<LatencyResult> {
  const http = new HubHttp(hubUrl, caPem, token, clients);
  try {
    // Warm up the connections and the hub's code paths; not recorded.
    await runPool(Math.min(200, total), clients, async () => void (await http.request('GET', paths())));
    const client: number[] = [];
    const rtt: number[] = [];
    let errors = 0;
    const t0 = process.hrtime.bigint();
    await runPool(total, clients, async () => {
      const res = await http.request('GET', paths());
      const body = res.body as { status?: number; roundTripMicros?: number } | null;
      if (res.status !== 200 || (isPing && body?.status !== 204)) {
        errors++;
        return;
      }
      client.push(res.ms);
      if (isPing && typeof body?.roundTripMicros === 'number') rtt.push(body.roundTripMicros);
    });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      clientMs: summarize(client),
      ...(isPing ? { roundTripMicros: summarize(rtt) } : {}),
      errors,
      requestsPerSecond: round(total / seconds, 1),
    };
  } finally {
    http.close();
  }
}

const round = (n: number, digits = 0): number => Math.round(n * 10 ** digits) / 10 ** digits;

async function runScale(n: number): Promise<Record<string, unknown>> {
  const dataDir = await mkdtemp(join(tmpdir(), `dockfleet-bench-${n}-`));
  tempDirs.add(dataDir);
  const port = await freePort();
  let hub: HubProc | null = null;
  let sim: Child | null = null;
  const phases: Record<string, number> = {};
  const t = (label: string, since: number): void => void (phases[label] = Date.now() - since);
  try {
    // Hub alone.
    let since = Date.now();
    hub = await startHub(dataDir, port);
    t('hubStartMs', since);
    const caPem = await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8');
    const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
    const http = new HubHttp(hub.url, caPem, token, 4);
    await runPool(200, 4, async () => void (await http.request('GET', '/healthz')));
    await sleep(2_000);
    const rss0 = await sampleRss(hub.child.pid, 5, 400);
    const healthzIdle = await measureLatency(hub.url, caPem, token, () => '/healthz', PINGS, 1, false);

    // Fleet: enroll + connect.
    since = Date.now();
    const prefix = `sim${n}`;
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
        join(dataDir, 'pki', 'ca.pem'),
        '--token-file',
        join(dataDir, 'admin.token'),
        '--count',
        String(n),
        '--prefix',
        prefix,
        '--concurrency',
        String(CONNECT_CONCURRENCY),
        '--watch-stdin',
      ],
      { cwd: ROOT, env: { ...process.env } },
    );
    let simStats = { connects: 0, drops: 0 };
    sim.onLine((line) => {
      const m = /^stats connects=(\d+) drops=(\d+)$/.exec(line);
      if (m) simStats = { connects: Number(m[1]), drops: Number(m[2]) };
    });
    const simAllConnected = (after: number, timeoutMs: number): Promise<number> =>
      new Promise((resolveAt, rejectAt) => {
        const timer = setTimeout(() => rejectAt(new Error(`simulator did not report ${n} connected within ${timeoutMs} ms`)), timeoutMs);
        sim!.onLine((line, at) => {
          if (at >= after && line === `simulated ${n} connected`) {
            clearTimeout(timer);
            resolveAt(at);
          }
        });
      });
    const enrolledLine = await sim.waitForLine(/^enrolled \d+/, 120_000 + n * 100);
    phases.enrollMs = enrolledLine.at - since;
    const connectStart = enrolledLine.at;
    const online = await waitOnline(http, n, 60_000 + n * 60);
    phases.connectAllMs = online.at - connectStart;
    http.close();

    // Idle with N agents: settle, RSS, CPU at steady heartbeat.
    await sleep(SETTLE_MS);
    const rssN = await sampleRss(hub.child.pid, 7, 500);
    const simRss = rssBytes(sim.pid);
    const cpu = await measureCpu({ hub: hub.child.pid, simulator: sim.pid }, CPU_WINDOW_MS);

    // Round trips with N connected.
    const names = Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(String(n - 1).length, '0')}`);
    const randomPing = (): string => `/api/v1/nodes/${names[Math.floor(Math.random() * names.length)]!}/ping`;
    const healthzSeq = await measureLatency(hub.url, caPem, token, () => '/healthz', PINGS, 1, false);
    const pingSeq = await measureLatency(hub.url, caPem, token, randomPing, PINGS, 1, true);
    const healthzConc = await measureLatency(hub.url, caPem, token, () => '/healthz', PINGS, CLIENTS, false);
    const pingConc = await measureLatency(hub.url, caPem, token, randomPing, PINGS, CLIENTS, true);
    const hubPeakBeforeRestart = peakRssBytes(hub.child.pid);
    const linksBeforeRestart = { ...simStats };

    // Restart: SIGKILL, start again on the same port and data, time until all N are back.
    const killedAt = Date.now();
    hub.child.kill('SIGKILL');
    await hub.child.exited;
    const backFromSim = simAllConnected(killedAt, 120_000);
    backFromSim.catch(() => {});
    hub = await startHub(dataDir, port);
    const http2 = new HubHttp(hub.url, caPem, token, 2);
    const back = await waitOnline(http2, n, 120_000);
    const simBackAt = await backFromSim;
    const restart = {
      killToReadyMs: hub.readyAt - killedAt,
      readyToAllOnlineApiMs: back.at - hub.readyAt,
      readyToAllConnectedAgentsMs: simBackAt - hub.readyAt,
      killToAllOnlineMs: back.at - killedAt,
      targetMs: RESTART_TARGET_MS,
      withinTarget: back.at - hub.readyAt <= RESTART_TARGET_MS,
    };
    http2.close();
    // RSS of the restarted hub with the same N (no enrollment traffic in its history).
    await sleep(Math.min(SETTLE_MS, 5_000));
    const rssNAfterRestart = await sampleRss(hub.child.pid, 5, 400);
    const linksAfterRestart = { ...simStats };

    const perAgent = (rss: number): number => Math.round((rss - rss0.median) / n);
    return {
      agents: n,
      phasesMs: phases,
      hubRss: {
        idleBytes: rss0.median,
        withAgentsBytes: rssN.median,
        bytesPerIdleAgent: perAgent(rssN.median),
        afterRestartWithAgentsBytes: rssNAfterRestart.median,
        bytesPerIdleAgentAfterRestart: perAgent(rssNAfterRestart.median),
        peakBytesBeforeRestart: hubPeakBeforeRestart,
        samples: { idle: rss0.samples, withAgents: rssN.samples, afterRestart: rssNAfterRestart.samples },
      },
      simulatorRssBytes: simRss,
      // Agent-side counts: handshakes completed and links/attempts ended. Before the restart a
      // clean run has connects = N and drops = 0 (no flapping, no failed first dials).
      agentLinks: { beforeRestart: linksBeforeRestart, afterRestart: linksAfterRestart },
      cpu: { windowMs: CPU_WINDOW_MS, ...cpu },
      latency: {
        requests: PINGS,
        concurrentClients: CLIENTS,
        healthzIdleHubSequential: healthzIdle,
        healthzSequential: healthzSeq,
        healthzConcurrent: healthzConc,
        pingSequential: pingSeq,
        pingConcurrent: pingConc,
      },
      restart,
    };
  } finally {
    await sim?.stop(5_000);
    await hub?.child.stop(5_000);
    await removeHubData(dataDir);
    tempDirs.delete(dataDir);
  }
}

function machineFacts(): Record<string, unknown> {
  let ulimitN: string | null = null;
  try {
    ulimitN = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    // unknown
  }
  let source: Record<string, unknown> = {};
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'bin').split('\n').filter(Boolean);
    source = { commit: git('rev-parse', 'HEAD'), uncommittedSrcFiles: dirty.length };
  } catch {
    // not a git checkout (e.g. a `git archive` export): say what the caller says it is
    if (process.env.BENCH_SOURCE) source = { description: process.env.BENCH_SOURCE };
  }
  return {
    source,
    loadAverage1m5m15m: loadavg().map((x) => round(x, 2)),
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    memTotalBytes: totalmem(),
    node: process.version,
    kernel: release(),
    platform: process.platform,
    ulimitNofile: ulimitN,
  };
}

const mib = (b: number): string => (b / 1024 / 1024).toFixed(1);
const kib = (b: number): string => (b / 1024).toFixed(1);

function printSummary(runs: Array<Record<string, any>>): void {
  const rows: Array<[string, ...string[]]> = [
    ['agents', ...runs.map((r) => String(r.agents))],
    ['enroll N (s)', ...runs.map((r) => (r.phasesMs.enrollMs / 1000).toFixed(1))],
    ['connect N (s)', ...runs.map((r) => (r.phasesMs.connectAllMs / 1000).toFixed(1))],
    ['hub RSS idle (MiB)', ...runs.map((r) => mib(r.hubRss.idleBytes))],
    ['hub RSS with N (MiB)', ...runs.map((r) => mib(r.hubRss.withAgentsBytes))],
    ['KiB per idle agent', ...runs.map((r) => kib(r.hubRss.bytesPerIdleAgent))],
    ['KiB per idle agent (after restart)', ...runs.map((r) => kib(r.hubRss.bytesPerIdleAgentAfterRestart))],
    ['hub CPU idle-heartbeat (% core)', ...runs.map((r) => String(r.cpu.hub.percentOfCore))],
    ['simulator CPU (% core)', ...runs.map((r) => String(r.cpu.simulator.percentOfCore))],
    ['healthz seq p50/p99 (ms)', ...runs.map((r) => `${r.latency.healthzSequential.clientMs.p50} / ${r.latency.healthzSequential.clientMs.p99}`)],
    ['ping seq p50/p99 (ms)', ...runs.map((r) => `${r.latency.pingSequential.clientMs.p50} / ${r.latency.pingSequential.clientMs.p99}`)],
    ['ping seq roundTrip p50/p99 (µs)', ...runs.map((r) => `${r.latency.pingSequential.roundTripMicros.p50} / ${r.latency.pingSequential.roundTripMicros.p99}`)],
    [`healthz x${CLIENTS} p50/p99 (ms)`, ...runs.map((r) => `${r.latency.healthzConcurrent.clientMs.p50} / ${r.latency.healthzConcurrent.clientMs.p99}`)],
    [`ping x${CLIENTS} p50/p99 (ms)`, ...runs.map((r) => `${r.latency.pingConcurrent.clientMs.p50} / ${r.latency.pingConcurrent.clientMs.p99}`)],
    [`ping x${CLIENTS} roundTrip p50/p99 (µs)`, ...runs.map((r) => `${r.latency.pingConcurrent.roundTripMicros.p50} / ${r.latency.pingConcurrent.roundTripMicros.p99}`)],
    [`ping x${CLIENTS} req/s`, ...runs.map((r) => String(r.latency.pingConcurrent.requestsPerSecond))],
    ['ping errors (seq+conc)', ...runs.map((r) => String(r.latency.pingSequential.errors + r.latency.pingConcurrent.errors))],
    ['agent connects/drops before restart', ...runs.map((r) => `${r.agentLinks.beforeRestart.connects} / ${r.agentLinks.beforeRestart.drops}`)],
    ['restart: kill→ready (s)', ...runs.map((r) => (r.restart.killToReadyMs / 1000).toFixed(2))],
    ['restart: ready→all online (s)', ...runs.map((r) => `${(r.restart.readyToAllOnlineApiMs / 1000).toFixed(2)}${r.restart.withinTarget ? '' : ' (over 30 s!)'}`)],
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  ')}\n`);
}

async function main(): Promise<void> {
  if (AGENTS.length === 0) throw new Error('BENCH_AGENTS names no agent counts');
  const started = Date.now();
  const machine = machineFacts();
  const runs: Array<Record<string, unknown>> = [];
  for (const n of AGENTS) {
    process.stdout.write(`fleet-scale: ${n} agents…\n`);
    const t0 = Date.now();
    runs.push(await runScale(n));
    process.stdout.write(`fleet-scale: ${n} agents done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  // Between two fleet sizes on fresh hubs the fixed costs (heap grown by enrollment and connect
  // churn) cancel out: the slope is the marginal RSS of one more idle agent.
  const marginal: Array<Record<string, number>> = [];
  const sized = runs as Array<{ agents: number; hubRss: { withAgentsBytes: number; afterRestartWithAgentsBytes: number } }>;
  for (let i = 1; i < sized.length; i++) {
    const a = sized[i - 1]!;
    const b = sized[i]!;
    if (b.agents === a.agents) continue;
    marginal.push({
      fromAgents: a.agents,
      toAgents: b.agents,
      bytesPerAgent: Math.round((b.hubRss.withAgentsBytes - a.hubRss.withAgentsBytes) / (b.agents - a.agents)),
      bytesPerAgentAfterRestart: Math.round((b.hubRss.afterRestartWithAgentsBytes - a.hubRss.afterRestartWithAgentsBytes) / (b.agents - a.agents)),
    });
  }
  const result = {
    bench: 'fleet-scale',
    timestamp: new Date().toISOString(),
    durationMs: Date.now() - started,
    machine,
    config: { agents: AGENTS, settleMs: SETTLE_MS, cpuWindowMs: CPU_WINDOW_MS, pings: PINGS, clients: CLIENTS, connectConcurrency: CONNECT_CONCURRENCY },
    notes: [
      'bytesPerIdleAgent = (median hub RSS with N idle agents after settle − median RSS right after start) / N; the first figure includes enrollment traffic, the after-restart one does not.',
      'cpu.percentOfCore = (utime+stime delta from /proc/PID/stat) / window; 100 = one full core.',
      'latency.*.clientMs is what the HTTPS client saw over keep-alive; roundTripMicros is measured inside the hub around the HTTP/2 request to the agent.',
      'marginalHubRss: slope of hub RSS between two fleet sizes, which cancels the fixed heap growth that dominates bytesPerIdleAgent at small N.',
      'restart.readyToAllOnlineApiMs is from the new hub printing "hub ready" until GET /api/v1/nodes shows all N online (polled every 200 ms).',
    ],
    marginalHubRss: marginal,
    runs,
  };
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write('\n');
  printSummary(runs as Array<Record<string, any>>);
  for (const m of marginal) {
    process.stdout.write(`marginal hub RSS ${m.fromAgents}→${m.toAgents} agents: ${kib(m.bytesPerAgent!)} KiB/agent (after restart: ${kib(m.bytesPerAgentAfterRestart!)} KiB/agent)\n`);
  }
  process.stdout.write(`\nwrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fleet-scale failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
