/**
 * /metrics at fleet scale: N simulated agents (bench/agent-simulator.ts, the real protocol, a
 * small inventory each) connected to an in-process hub; then S scrapes of GET /metrics with the
 * scrape token, each beside a GET /api/v1/nodes on the same hub as the baseline (both list the
 * whole fleet). Measures response time (p50/p99), size and series, and the hub's CPU per scrape
 * (process.cpuUsage around each request; the simulator runs in its own process, so its CPU is not
 * counted), and from it the CPU share a Prometheus scraping every 15 s costs the hub.
 *
 *   node --import tsx bench/metrics.bench.ts          (BENCH_AGENTS=1000 by default)
 *
 * Knobs (env): BENCH_AGENTS=1000  BENCH_SCRAPES=60  BENCH_SETTLE_MS=5000  BENCH_SCRAPE_INTERVAL_S=15
 * Writes bench/results/metrics.json. Kills only the simulator it started.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestHub } from '../test/support/hub-fixture.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { sleep, startChild } from './lib/proc.ts';
import { summarize } from './lib/stats.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'bench', 'results', 'metrics.json');
const AGENTS = envInt('BENCH_AGENTS', 1000);
const SCRAPES = envInt('BENCH_SCRAPES', 60);
const SETTLE_MS = envInt('BENCH_SETTLE_MS', 5_000);
const SCRAPE_INTERVAL_S = envInt('BENCH_SCRAPE_INTERVAL_S', 15);
const WARMUP = 5;

interface Sample {
  ms: number;
  cpuMs: number;
  bytes: number;
  text: string;
}

runBench('metrics', async () => {
  const hub = await startTestHub();
  const agent = new https.Agent({ ca: hub.caPem, keepAlive: true, maxSockets: 1 });
  const simulator = { child: null as ReturnType<typeof startChild> | null };
  try {
    const scrapeToken = (await readFile(join(hub.dataDir, 'metrics.token'), 'utf8')).trim();
    const caFile = join(hub.dataDir, 'bench-ca.pem');
    await writeFile(caFile, hub.caPem);

    benchLog(`enrolling and connecting ${AGENTS} simulated agents`);
    const started = Date.now();
    simulator.child = startChild(
      'simulator',
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'bench', 'agent-simulator.ts'), '--hub', hub.url, '--ca', caFile, '--token', hub.token, '--count', String(AGENTS), '--prefix', 'sim', '--watch-stdin'],
      { cwd: ROOT },
    );
    await simulator.child.waitForLine(new RegExp(`^simulated ${AGENTS} connected$`), 120_000 + AGENTS * 200);
    const connectMs = Date.now() - started;
    benchLog(`${AGENTS} connected in ${connectMs} ms; settling ${SETTLE_MS} ms`);
    await sleep(SETTLE_MS);

    /** One request, timed, with the CPU this process spent while it was in flight. */
    const timed = (path: string, token: string): Promise<Sample> =>
      new Promise((done, fail) => {
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        https
          .get(new URL(path, hub.url), { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const ms = Number(process.hrtime.bigint() - t0) / 1e6;
              const cpu = process.cpuUsage(cpu0);
              if (res.statusCode !== 200) return fail(new Error(`${path}: ${res.statusCode}`));
              const body = Buffer.concat(chunks);
              done({ ms, cpuMs: (cpu.user + cpu.system) / 1000, bytes: body.length, text: path === '/metrics' ? body.toString('utf8') : '' });
            });
          })
          .on('error', fail);
      });

    for (let i = 0; i < WARMUP; i++) {
      await timed('/metrics', scrapeToken);
      await timed('/api/v1/nodes', hub.token);
    }
    const scrapes: Sample[] = [];
    const baseline: Sample[] = [];
    for (let i = 0; i < SCRAPES; i++) {
      // Alternate which goes first, so neither always runs on a warmer cache.
      if (i % 2 === 0) {
        scrapes.push(await timed('/metrics', scrapeToken));
        baseline.push(await timed('/api/v1/nodes', hub.token));
      } else {
        baseline.push(await timed('/api/v1/nodes', hub.token));
        scrapes.push(await timed('/metrics', scrapeToken));
      }
      await sleep(50);
    }

    const last = scrapes[scrapes.length - 1]!.text;
    const series = last.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    const online = /^dockfleet_nodes\{state="online"\} (\d+)$/m.exec(last)?.[1];
    if (Number(online) !== AGENTS) throw new Error(`the scrape shows ${online} nodes online, not ${AGENTS}`);
    const cpuScrape = summarize(scrapes.map((s) => s.cpuMs));
    const result = {
      bench: 'metrics',
      at: new Date().toISOString(),
      agents: AGENTS,
      connectMs,
      scrapes: SCRAPES,
      metrics: {
        latencyMs: summarize(scrapes.map((s) => s.ms)),
        bytes: scrapes[scrapes.length - 1]!.bytes,
        series,
        cpuMsPerScrape: cpuScrape,
        /** Mean CPU per scrape over the scrape interval: the share of one core a Prometheus costs the hub. */
        cpuShareOfCoreAtInterval: { intervalS: SCRAPE_INTERVAL_S, percent: Math.round((cpuScrape.mean / (SCRAPE_INTERVAL_S * 1000)) * 100 * 10_000) / 10_000 },
      },
      baseline: {
        what: 'GET /api/v1/nodes (the whole fleet as JSON) on the same hub, in the same run',
        latencyMs: summarize(baseline.map((s) => s.ms)),
        bytes: baseline[baseline.length - 1]!.bytes,
        cpuMsPerRequest: summarize(baseline.map((s) => s.cpuMs)),
      },
      notes: "CPU is this process (the hub, plus the bench's own HTTPS client for the one request in flight); the simulator runs in its own process.",
      machine: machineFacts(),
    };
    await mkdir(dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    benchLog(
      `/metrics with ${AGENTS} agents: p50 ${result.metrics.latencyMs.p50} ms, p99 ${result.metrics.latencyMs.p99} ms, ${result.metrics.bytes} bytes, ${series} series, ` +
        `${cpuScrape.mean} ms CPU per scrape (${result.metrics.cpuShareOfCoreAtInterval.percent} % of a core at ${SCRAPE_INTERVAL_S} s)`,
    );
    benchLog(
      `baseline GET /api/v1/nodes: p50 ${result.baseline.latencyMs.p50} ms, p99 ${result.baseline.latencyMs.p99} ms, ${result.baseline.bytes} bytes, ${result.baseline.cpuMsPerRequest.mean} ms CPU`,
    );
    benchLog(`wrote ${RESULTS}`);
  } finally {
    agent.destroy();
    await simulator.child?.stop();
    await hub.stop();
  }
});
