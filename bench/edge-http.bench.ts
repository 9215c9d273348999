/**
 * The edge with small requests: requests per second and p50/p99 latency of a 26-byte answer at
 * 1, 64 and 256 concurrent keep-alive connections, side by side in one run:
 *
 *   direct  plain HTTP straight to the app container's port (its address on the engine's bridge)
 *   nginx   Debian's nginx as a TLS reverse proxy to that port (keep-alive upstream pool, TLS 1.3)
 *   edge    the hub's edge port (TLS 1.3) → one HTTP/2 stream per connection on the agent's link →
 *           the agent → the same port
 *
 * Client: bench/lib/load-client.ts in its own process, closed loop (each connection sends its
 * next request as soon as it has the answer), every connection opened and warmed first. Runs are
 * interleaved (per round, per concurrency, the order of the three rotates) so drift hits all
 * alike; the figures are medians over rounds. CPU seconds of every process per request show where
 * the time goes (BENCH_CPU_PROF=DIR writes the hub's and agent's V8 profiles; read them with
 * bench/lib/cpuprofile-summary.ts).
 *
 *   node --import tsx bench/edge-http.bench.ts
 *
 * Then the same at 64 and 256 connections paced to 2,500 requests/s in all (each connection one
 * request per N/2500 s): below every path's capacity, so the latency is the path's own and not
 * the queue a saturated closed loop builds.
 *
 * Knobs (env): BENCH_CONCURRENCY=1,64,256 BENCH_RUN_MS=5000 BENCH_ROUNDS=3 BENCH_WARM_MS=3000
 * BENCH_PACED=64,256 BENCH_PACED_RPS=2500 BENCH_PATHS=direct,nginx,edge.
 * Targets (issue 15): edge p50 within +1 ms of nginx, edge throughput ≥ 0.7× nginx.
 * Writes bench/results/edge-http.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT, childEnv } from './lib/dockfleet-procs.ts';
import { startEdgeRig, type EdgeRig } from './lib/edge-rig.ts';
import { envInt } from './lib/env-int.ts';
import type { Target } from './lib/http-timing.ts';
import type { LoadResult } from './lib/load-client.ts';
import { machineFacts } from './lib/machine.ts';
import { startChild } from './lib/proc.ts';
import { startSampler } from './lib/sampler.ts';
import { median } from './lib/stats.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'edge-http.json');
const LOAD_CLIENT = join(ROOT, 'bench', 'lib', 'load-client.ts');
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '1,64,256')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const RUN_MS = envInt('BENCH_RUN_MS', 5_000);
const ROUNDS = Math.max(1, envInt('BENCH_ROUNDS', 3));
const WARM_MS = envInt('BENCH_WARM_MS', 3_000);
const ALL_PATHS = ['direct', 'nginx', 'edge'] as const;
type PathName = (typeof ALL_PATHS)[number];
/** BENCH_PATHS=edge runs some (for a profile, BENCH_CPU_PROF=DIR); the summary needs all three. */
const PATHS = ALL_PATHS.filter((p) => (process.env.BENCH_PATHS ?? 'direct,nginx,edge').split(',').includes(p));
const TARGETS = { p50OverNginxMs: 1, throughputVsNginx: 0.7 };
/** Paced runs: these connection counts, all together at PACED_RPS requests per second (below every path's capacity). */
const PACED = (process.env.BENCH_PACED ?? '64,256')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const PACED_RPS = envInt('BENCH_PACED_RPS', 2_500);

const log = benchLog;
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;

interface Run {
  path: PathName;
  clients: number;
  /** 0: closed loop; else each connection sends at most one request per interval. */
  intervalMs: number;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  firstError: string | null;
  /** CPU µs per request, per process (the load client included). */
  cpuMicrosPerRequest: Record<string, number>;
  cpuPercent: Record<string, number>;
}

async function load(rig: EdgeRig, path: PathName, target: Target, clients: number, durationMs: number, roundNo: number, intervalMs = 0): Promise<Run> {
  const child = startChild('load-client', process.execPath, ['--import', 'tsx', LOAD_CLIENT], { cwd: ROOT, env: childEnv() });
  try {
    child.proc.stdin!.write(`${JSON.stringify({ target, path: '/small', clients, durationMs, intervalMs })}\n`);
    await child.waitForLine(/^ready$/, 60_000);
    const pids: Record<string, number> =
      path === 'edge' ? { hub: rig.pids.hub, agent: rig.pids.agent, app: rig.pids.app } : path === 'nginx' ? { nginx: rig.pids.nginx, app: rig.pids.app } : { app: rig.pids.app };
    const sampler = startSampler({ ...pids, loadClient: child.pid }, 500);
    const resultLine = child.waitForLine(/^\{/, durationMs + 120_000);
    child.proc.stdin!.write('go\n');
    const { line } = await resultLine;
    const windows = sampler.stop();
    const r = JSON.parse(line) as LoadResult;
    return {
      path,
      clients,
      intervalMs,
      round: roundNo,
      rps: r.requestsPerSecond,
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      errors: r.errors,
      firstError: r.firstError,
      cpuMicrosPerRequest: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, r.count > 0 ? Math.round((w.cpuS / r.count) * 1e6) : 0])),
      cpuPercent: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, w.cpuPercent])),
    };
  } finally {
    await child.stop(2_000);
  }
}

function summary(runs: Run[], concurrency: number[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const clients of concurrency) {
    const per: Record<string, { rps: number; p50: number; p99: number; errors: number; cpuMicrosPerRequest: Record<string, number> }> = {};
    for (const path of PATHS) {
      const mine = runs.filter((r) => r.path === path && r.clients === clients);
      const procs = Object.keys(mine[0]?.cpuMicrosPerRequest ?? {});
      per[path] = {
        rps: round(median(mine.map((r) => r.rps)), 1),
        p50: round(median(mine.map((r) => r.p50)), 3),
        p99: round(median(mine.map((r) => r.p99)), 3),
        errors: mine.reduce((a, r) => a + r.errors, 0),
        cpuMicrosPerRequest: Object.fromEntries(procs.map((p) => [p, Math.round(median(mine.map((r) => r.cpuMicrosPerRequest[p] ?? 0)))])),
      };
    }
    const edge = per.edge;
    const nginx = per.nginx;
    if (!edge || !nginx || !per.direct) {
      out[String(clients)] = per;
      continue;
    }
    out[String(clients)] = {
      ...per,
      edgeP50OverNginxMs: round(edge.p50 - nginx.p50, 3),
      edgeP99OverNginxMs: round(edge.p99 - nginx.p99, 3),
      edgeThroughputVsNginx: round(edge.rps / nginx.rps, 3),
      edgeThroughputVsDirect: round(edge.rps / per.direct!.rps, 3),
      withinTarget: { p50: edge.p50 - nginx.p50 <= TARGETS.p50OverNginxMs, throughput: edge.rps / nginx.rps >= TARGETS.throughputVsNginx },
    };
  }
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  log('starting a private engine, the app container, a hub with --edge-listen, an agent and nginx');
  const rig = await startEdgeRig({ prefix: 'edgehttp', maxConnectionsPerAddress: 4096 });
  let out: Record<string, unknown>;
  try {
    const runs: Run[] = [];
    log(`warm-up: ${WARM_MS} ms on each path at 64 connections`);
    for (const path of PATHS) await load(rig, path, rig.targets[path], 64, WARM_MS, 0);
    for (let r = 1; r <= ROUNDS; r++) {
      for (const clients of CONCURRENCY) {
        const order = [...PATHS.slice(r % PATHS.length), ...PATHS.slice(0, r % PATHS.length)];
        for (const path of order) {
          const run = await load(rig, path, rig.targets[path], clients, RUN_MS, r);
          log(
            `round ${r}/${ROUNDS} ${String(clients).padStart(3)} conns ${path.padEnd(6)} ${String(run.rps).padStart(8)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms${run.errors ? `  ${run.errors} errors (${run.firstError})` : ''}  cpu µs/req ${JSON.stringify(run.cpuMicrosPerRequest)}`,
          );
          if (run.errors > 0) throw new Error(`${path} at ${clients}: ${run.errors} errors, first: ${run.firstError}`);
          runs.push(run);
        }
      }
      for (const clients of PACED) {
        const intervalMs = round((clients / PACED_RPS) * 1000, 1);
        const order = [...PATHS.slice(r % PATHS.length), ...PATHS.slice(0, r % PATHS.length)];
        for (const path of order) {
          const run = await load(rig, path, rig.targets[path], clients, RUN_MS, r, intervalMs);
          log(
            `round ${r}/${ROUNDS} ${String(clients).padStart(3)} conns paced to ${PACED_RPS}/s ${path.padEnd(6)} ${String(run.rps).padStart(8)} req/s  p50 ${run.p50} ms  p99 ${run.p99} ms${run.errors ? `  ${run.errors} errors (${run.firstError})` : ''}`,
          );
          if (run.errors > 0) throw new Error(`${path} at ${clients} paced: ${run.errors} errors, first: ${run.firstError}`);
          runs.push(run);
        }
      }
    }
    out = {
      bench: 'edge-http',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine: { ...machine, nginx: rig.nginx.version },
      config: {
        concurrency: CONCURRENCY,
        paced: PACED,
        pacedRequestsPerSecond: PACED_RPS,
        runMs: RUN_MS,
        rounds: ROUNDS,
        warmMs: WARM_MS,
        path: '/small',
        responseBytes: 26,
        maxConnectionsPerAddress: 4096,
      },
      targets: TARGETS,
      notes: [
        'direct: plain HTTP/1.1 keep-alive to the container address on the engine bridge (no TLS, no proxy): the floor.',
        'nginx: Debian nginx, one worker, TLS 1.3 (TLS_AES_128_GCM_SHA256), HTTP/1.1 keep-alive upstream pool, no buffering (config in nginxConfig).',
        'edge: the hub edge port, TLS 1.3; each client connection is one HTTP/2 stream on the agent link (itself TLS), the agent holds one TCP connection to the app per client connection.',
        'Closed loop (summary): each of N keep-alive connections sends its next GET as soon as the answer is read, so at 64 and 256 the machine is saturated and p50 is mostly queueing (N / throughput); medians over rounds; 2 cores shared by client, proxy processes and app.',
        "Paced (paced): the same connections, each sending at most one GET per N/PACED_RPS seconds, so all paths carry the same load below saturation and latency is the path's own; rps there is the offered rate, not a capacity.",
        'cpuMicrosPerRequest: CPU seconds each process used during the run divided by requests completed (loadClient is the client process).',
      ],
      nginxConfig: rig.nginx.config,
      summary: summary(
        runs.filter((r) => r.intervalMs === 0),
        CONCURRENCY,
      ),
      /** The same connections paced to PACED_RPS in all: latency below saturation, where queueing does not hide it. */
      paced: summary(
        runs.filter((r) => r.intervalMs > 0),
        PACED,
      ),
      runs,
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const s = out.summary as Record<string, any>;
  const lines = CONCURRENCY.map((c) => {
    const x = s[String(c)];
    const row = (p: PathName): string => `${p} ${x[p].rps} req/s p50 ${x[p].p50} p99 ${x[p].p99}`;
    if (!x.withinTarget) return `  ${String(c).padStart(3)} conns: ${PATHS.map(row).join(' | ')}`;
    return `  ${String(c).padStart(3)} conns: ${PATHS.map(row).join(' | ')}\n         edge vs nginx: p50 ${x.edgeP50OverNginxMs >= 0 ? '+' : ''}${x.edgeP50OverNginxMs} ms (${x.withinTarget.p50 ? 'within' : 'OVER'} +${TARGETS.p50OverNginxMs}), throughput ×${x.edgeThroughputVsNginx} (${x.withinTarget.throughput ? 'within' : 'UNDER'} ${TARGETS.throughputVsNginx}×)`;
  });
  const p = out.paced as Record<string, any>;
  const pacedLines = PACED.map((c) => {
    const x = p[String(c)];
    return `  ${String(c).padStart(3)} conns: ${PATHS.map((q) => `${q} p50 ${x[q].p50} p99 ${x[q].p99}`).join(' | ')}${x.withinTarget ? `  edge p50 ${x.edgeP50OverNginxMs >= 0 ? '+' : ''}${x.edgeP50OverNginxMs} ms vs nginx (${x.withinTarget.p50 ? 'within' : 'OVER'} +${TARGETS.p50OverNginxMs})` : ''}`;
  });
  process.stdout.write(
    ['', 'edge-http: a 26-byte answer, closed loop', ...lines, `paced to ${PACED_RPS} req/s in all`, ...pacedLines, `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`, ''].join(
      '\n',
    ),
  );
}

runBench('edge-http', main);
