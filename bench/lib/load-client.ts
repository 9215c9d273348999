/**
 * A load generator in its own process (so its event loop is not the one measuring something
 * else): C concurrent clients, each on its own keep-alive connection, issue GET PATH for D ms,
 * back to back (closed loop) or each at most once every INTERVAL ms (paced).
 *
 *   node --import tsx bench/lib/load-client.ts   (configuration as one JSON line on stdin)
 *   {"target": Target (see http-timing.ts), "path": "/…", "clients": 200, "durationMs": 10000,
 *    "intervalMs": 0}
 *
 * Opens and warms every connection (one request each), prints `ready`, waits for a `go` line on
 * stdin, runs, then prints one JSON line: a latency summary (ms), count, errors, req/s, and a
 * per-second timeline of request counts and p99s. Exits when done or when stdin closes.
 */
import { createInterface } from 'node:readline';
import { TimedClient, type Target } from './http-timing.ts';
import { summarize, percentile } from './stats.ts';

interface LoadConfig {
  target: Target;
  path: string;
  clients: number;
  durationMs: number;
  intervalMs?: number;
  /** Status every answer must have (default 200). */
  expectStatus?: number;
}

export interface LoadResult {
  clients: number;
  durationMs: number;
  intervalMs: number;
  count: number;
  errors: number;
  firstError: string | null;
  requestsPerSecond: number;
  latencyMs: ReturnType<typeof summarize>;
  /** Per whole second of the run: requests completed and their p99 (ms). */
  timeline: Array<{ second: number; count: number; p99: number }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) return;
  const cfg = JSON.parse(first.value) as LoadConfig;
  const expect = cfg.expectStatus ?? 200;
  const interval = cfg.intervalMs ?? 0;
  const client = new TimedClient(cfg.target, cfg.clients);
  // Open every connection now: the run measures requests, not TLS handshakes.
  await Promise.all(Array.from({ length: cfg.clients }, () => client.request(cfg.path)));
  process.stdout.write('ready\n');
  const go = await lines.next();
  if (go.done) return;

  const samples: number[] = [];
  const finishedAt: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  const end = t0 + cfg.durationMs;
  const worker = async (i: number): Promise<void> => {
    // Paced clients start spread over one interval, so they do not all fire at once.
    if (interval > 0) await sleep((i / cfg.clients) * interval);
    while (performance.now() < end) {
      const started = performance.now();
      try {
        const res = await client.request(cfg.path, { timeoutMs: 30_000 });
        if (res.status !== expect) throw new Error(`HTTP ${res.status}`);
        samples.push(res.ms);
        finishedAt.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
      if (interval > 0) {
        const wait = interval - (performance.now() - started);
        if (wait > 0) await sleep(Math.min(wait, Math.max(0, end - performance.now())));
      }
    }
  };
  await Promise.all(Array.from({ length: cfg.clients }, (_, i) => worker(i)));
  const elapsed = performance.now() - t0;
  const bySecond = new Map<number, number[]>();
  finishedAt.forEach((at, i) => {
    const s = Math.floor(at / 1000);
    const list = bySecond.get(s) ?? [];
    list.push(samples[i]!);
    bySecond.set(s, list);
  });
  const result: LoadResult = {
    clients: cfg.clients,
    durationMs: Math.round(elapsed),
    intervalMs: interval,
    count: samples.length,
    errors,
    firstError,
    requestsPerSecond: Math.round((samples.length / elapsed) * 1000 * 10) / 10,
    latencyMs: summarize(samples),
    timeline: [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([second, list]) => ({ second, count: list.length, p99: Math.round(percentile(list, 99) * 100) / 100 })),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  client.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`load-client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
