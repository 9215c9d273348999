/**
 * The edge with one large transfer: a 1 GiB download and a 1 GiB upload, MB/s, side by side in
 * one run (same rig as edge-http: lib/edge-rig.ts):
 *
 *   direct  plain HTTP straight to the app container's port
 *   nginx   Debian's nginx as a TLS reverse proxy to that port (no buffering either way)
 *   edge    the hub's edge port (TLS) → an HTTP/2 stream on the agent's link (TLS) → the agent → the port
 *
 * One transfer at a time, on a fresh connection, client in this process; the app streams a
 * repeated buffer down and counts what comes up, so neither end does more than move bytes. RSS of
 * the hub, agent and nginx every 100 ms during each transfer (bounded memory is the point as much
 * as speed), and CPU seconds per GiB for each process. Repetitions interleave the three paths.
 *
 *   node --import tsx bench/edge-transfer.bench.ts
 *
 * Knobs (env): BENCH_MIB=1024 BENCH_REPS=2. Target (issue 15): edge ≥ 0.6× direct.
 * Writes bench/results/edge-transfer.json.
 */
import http from 'node:http';
import https from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { startEdgeRig, type EdgeRig } from './lib/edge-rig.ts';
import { envInt } from './lib/env-int.ts';
import type { Target } from './lib/http-timing.ts';
import { machineFacts } from './lib/machine.ts';
import { rssBytes } from './lib/proc.ts';
import { startSampler } from './lib/sampler.ts';
import { median } from './lib/stats.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'edge-transfer.json');
const MIB = envInt('BENCH_MIB', 1024);
const REPS = Math.max(1, envInt('BENCH_REPS', 2));
const BYTES = MIB * 1024 * 1024;
const PATHS = ['direct', 'nginx', 'edge'] as const;
type PathName = (typeof PATHS)[number];
type Direction = 'download' | 'upload';
const TARGET_VS_DIRECT = 0.6;
const CHUNK = Buffer.alloc(256 * 1024, 0x62);

const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

interface Transfer {
  path: PathName;
  direction: Direction;
  rep: number;
  seconds: number;
  MBps: number;
  /** Peak RSS during the transfer minus RSS just before it, per proxy process (MB). */
  rssGrowthMB: Record<string, number>;
  /** CPU seconds per GiB moved, per process (`client` is this process). */
  cpuSecondsPerGiB: Record<string, number>;
}

function requestOptions(target: Target, method: string, path: string, headers: Record<string, string>): https.RequestOptions & { proto: typeof http | typeof https } {
  if (target.kind === 'unix') throw new Error('no unix targets here');
  const url = new URL(path, target.base);
  const common = { method, host: url.hostname, port: url.port, path: url.pathname + url.search, agent: false as const, headers: { ...target.headers, ...headers } };
  return target.kind === 'http' ? { ...common, proto: http } : { ...common, proto: https, ca: target.caPem, servername: target.servername ?? '' };
}

/** Runs one transfer; resolves with the bytes the other end saw. */
function transfer(target: Target, direction: Direction): Promise<number> {
  return new Promise((resolve, reject) => {
    const { proto, ...opts } =
      direction === 'download'
        ? requestOptions(target, 'GET', `/download?bytes=${BYTES}`, {})
        : requestOptions(target, 'POST', '/upload', { 'content-length': String(BYTES), 'content-type': 'application/octet-stream' });
    const req = proto.request(opts, (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (direction === 'upload') chunks.push(c);
      });
      res.once('error', reject);
      res.once('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        resolve(direction === 'download' ? bytes : Number((JSON.parse(Buffer.concat(chunks).toString()) as { bytes: number }).bytes));
      });
    });
    req.once('error', reject);
    req.setTimeout(300_000, () => req.destroy(new Error('no progress for 300 s')));
    if (direction === 'download') return void req.end();
    let left = BYTES;
    Readable.from(
      (function* body() {
        while (left > 0) {
          const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
          left -= chunk.length;
          yield chunk;
        }
      })(),
      { objectMode: false },
    ).pipe(req);
  });
}

async function measure(rig: EdgeRig, path: PathName, direction: Direction, rep: number): Promise<Transfer> {
  const watched: Record<string, number> = path === 'edge' ? { hub: rig.pids.hub, agent: rig.pids.agent } : path === 'nginx' ? { nginx: rig.pids.nginx } : {};
  const before = Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, rssBytes(pid)]));
  const sampler = startSampler({ ...watched, app: rig.pids.app, client: process.pid }, 100);
  const t0 = performance.now();
  const seen = await transfer(rig.targets[path], direction);
  const seconds = (performance.now() - t0) / 1000;
  const windows = sampler.stop();
  if (seen !== BYTES) throw new Error(`${path} ${direction}: the other end saw ${seen} bytes of ${BYTES}`);
  const gib = BYTES / 2 ** 30;
  return {
    path,
    direction,
    rep,
    seconds: round(seconds, 2),
    MBps: round(BYTES / 1e6 / seconds),
    rssGrowthMB: Object.fromEntries(Object.keys(watched).map((k) => [k, round((windows[k]!.peakRss - before[k]!) / 1e6)])),
    cpuSecondsPerGiB: Object.fromEntries(Object.entries(windows).map(([k, w]) => [k, round(w.cpuS / gib, 2)])),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  log('starting a private engine, the app container, a hub with --edge-listen, an agent and nginx');
  const rig = await startEdgeRig({ prefix: 'edgexfer', maxConnectionsPerAddress: 256 });
  let out: Record<string, any>;
  try {
    const results: Transfer[] = [];
    for (let rep = 1; rep <= REPS; rep++) {
      for (const direction of ['download', 'upload'] as const) {
        const order = [...PATHS.slice(rep % PATHS.length), ...PATHS.slice(0, rep % PATHS.length)];
        for (const path of order) {
          const t = await measure(rig, path, direction, rep);
          log(
            `rep ${rep}/${REPS} ${direction.padEnd(8)} ${path.padEnd(6)} ${String(t.MBps).padStart(7)} MB/s (${t.seconds} s)  RSS growth MB ${JSON.stringify(t.rssGrowthMB)}  CPU s/GiB ${JSON.stringify(t.cpuSecondsPerGiB)}`,
          );
          results.push(t);
        }
      }
    }
    const summary: Record<string, any> = {};
    for (const direction of ['download', 'upload'] as const) {
      const per = Object.fromEntries(
        PATHS.map((p) => {
          const mine = results.filter((r) => r.path === p && r.direction === direction);
          const procs = Object.keys(mine[0]!.cpuSecondsPerGiB);
          return [
            p,
            {
              MBps: round(median(mine.map((r) => r.MBps))),
              peakRssGrowthMB: Object.fromEntries(Object.keys(mine[0]!.rssGrowthMB).map((k) => [k, Math.max(...mine.map((r) => r.rssGrowthMB[k]!))])),
              cpuSecondsPerGiB: Object.fromEntries(procs.map((k) => [k, round(median(mine.map((r) => r.cpuSecondsPerGiB[k]!)), 2)])),
            },
          ];
        }),
      ) as unknown as Record<PathName, { MBps: number }>;
      const vsDirect = round(per.edge.MBps / per.direct.MBps, 3);
      summary[direction] = {
        ...per,
        edgeVsDirect: vsDirect,
        edgeVsNginx: round(per.edge.MBps / per.nginx.MBps, 3),
        nginxVsDirect: round(per.nginx.MBps / per.direct.MBps, 3),
        withinTarget: vsDirect >= TARGET_VS_DIRECT,
      };
    }
    out = {
      bench: 'edge-transfer',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine: { ...machine, nginx: rig.nginx.version },
      config: { bytes: BYTES, reps: REPS },
      targets: { edgeVsDirect: TARGET_VS_DIRECT },
      notes: [
        'direct: plain HTTP to the container address on the engine bridge (no TLS): the floor; nginx and edge encrypt on the client hop, the edge again on the agent link.',
        'One transfer at a time on a fresh connection; the client is this process; medians over reps.',
        'rssGrowthMB: peak RSS during the transfer minus RSS just before (sampled every 100 ms); cpuSecondsPerGiB includes the client (this process) and the app.',
        "The native two-nginx relay (lib/native-relay.ts) relays to a unix socket, not a container port, and needs nginx's stream module: not used here.",
      ],
      summary,
      transfers: results,
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const line = (d: Direction): string => {
    const s = out.summary[d];
    return `  ${d.padEnd(8)} direct ${s.direct.MBps} MB/s | nginx ${s.nginx.MBps} MB/s | edge ${s.edge.MBps} MB/s: ×${s.edgeVsDirect} direct (${s.withinTarget ? 'within' : 'UNDER'} ${TARGET_VS_DIRECT}×), ×${s.edgeVsNginx} nginx; hub/agent RSS growth ${s.edge.peakRssGrowthMB.hub}/${s.edge.peakRssGrowthMB.agent} MB`;
  };
  process.stdout.write(['', `edge-transfer: ${MIB} MiB each way`, line('download'), line('upload'), `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`, ''].join('\n'));
}

runBench('edge-transfer', main);
