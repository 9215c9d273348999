/**
 * A failing deploy rolled back: how long from the failed health gate until the previous
 * revision serves again, and what a client of the old revision sees meanwhile. Real hub, real
 * agent, private dockerd (lib/stack-engine-rig.ts).
 *
 * Revision 1 is busybox httpd answering `rev1` on a port published on 127.0.0.1, healthy by its
 * healthcheck. Revision 2 fails the gate (deadline 5 s) in one of two ways: it serves `rev2` but
 * never becomes healthy (the gate waits for its deadline), or it crash-loops (the gate fails at
 * the first restart). Each runs with the port published two ways:
 *
 *   start-first  `127.0.0.1::8080` (the engine picks a host port): nothing prevents two copies,
 *                so revision 1 keeps running beside revision 2 until the gate decides;
 *   stop-first   `127.0.0.1:PORT:8080`: a fixed host port, so revision 1 is stopped first.
 *
 * A client asks revision 1's host port for `/` every 100 ms (a new connection each time, 1 s
 * timeout) from before the deploy until 3 s after its job is final, counting errors and answers
 * that are not `rev1`. Gate times come from the job's own steps (agent clock, same machine).
 *
 *   node --import tsx bench/stack-rollback.bench.ts
 *
 * Knobs (env): BENCH_REPS=3 BENCH_DEADLINE_MS=5000 BENCH_PROBE_MS=100.
 * Writes bench/results/stack-rollback.json.
 */
import http from 'node:http';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BUSYBOX_IMAGE, engineRequest } from '../test/support/engines.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { freePort, sleep } from './lib/proc.ts';
import { preciseNow } from './lib/simulated-jobs.ts';
import { startStackEngineRig, stepTimes, type StackEngineRig } from './lib/stack-engine-rig.ts';
import { median } from './lib/stats.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'stack-rollback.json');
const REPS = Math.max(1, envInt('BENCH_REPS', 3, { integer: true }));
const DEADLINE_MS = envInt('BENCH_DEADLINE_MS', 5_000, { integer: true });
const PROBE_MS = envInt('BENCH_PROBE_MS', 100, { integer: true });
const AFTER_MS = 3_000;
const TARGET_MS = 5_000;

type Publish = 'start-first' | 'stop-first';
type Failure = 'never-healthy' | 'crash-loop';
const SCENARIOS: Array<{ publish: Publish; failure: Failure }> = [
  { publish: 'start-first', failure: 'never-healthy' },
  { publish: 'start-first', failure: 'crash-loop' },
  { publish: 'stop-first', failure: 'never-healthy' },
  { publish: 'stop-first', failure: 'crash-loop' },
];

const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

function compose(rev: 1 | 2, failure: Failure, port: string): string {
  const serve = (text: string): string => `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 8080 -h /www`;
  const crash = rev === 2 && failure === 'crash-loop';
  const test = rev === 2 && failure === 'never-healthy' ? "['CMD', 'false']" : "['CMD-SHELL', 'wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1']";
  return [
    'services:',
    '  web:',
    `    image: ${BUSYBOX_IMAGE}`,
    crash ? `    command: ['sh', '-c', 'echo rev2 cannot start: no config >&2; exit 3']` : `    command: ['sh', '-c', '${serve(`rev${rev}`)}']`,
    '    restart: always',
    '    stop_grace_period: 1s',
    '    ports:',
    `      - "${port}"`,
    '    healthcheck:',
    `      test: ${test}`,
    '      interval: 500ms',
    '      timeout: 2s',
    // never-healthy: the failing check stays `starting` (retries far off) until the gate's deadline
    `      retries: ${rev === 2 && failure === 'never-healthy' ? 1000 : 3}`,
    '    labels:',
    `      bench.rev: "${rev}"`,
    '',
  ].join('\n');
}

interface Probe {
  at: number;
  ok: boolean;
  /** `rev1`, `rev2`, an HTTP status, or the error code. */
  what: string;
}

function probeOnce(port: number): Promise<Probe> {
  const at = preciseNow();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ at, ok: res.statusCode === 200 && body.trim() === 'rev1', what: res.statusCode === 200 ? body.trim() : `HTTP ${res.statusCode}` }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ at, ok: false, what: err.code ?? err.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ at, ok: false, what: err.code ?? err.message }));
  });
}

/** Probes every `everyMs` (each probe starts on schedule, whatever the last one does) until stopped. */
function startProber(port: number, everyMs: number): { stop(): Promise<Probe[]> } {
  const pending: Array<Promise<Probe>> = [];
  const timer = setInterval(() => pending.push(probeOnce(port)), everyMs);
  pending.push(probeOnce(port));
  return {
    async stop() {
      clearInterval(timer);
      return (await Promise.all(pending)).sort((a, b) => a.at - b.at);
    },
  };
}

async function hostPortOf(rig: StackEngineRig, stack: string): Promise<number> {
  const [c] = (await rig.projectContainers(stack)).filter((x) => x.State === 'running');
  if (!c) throw new Error(`${stack}: no running container`);
  const info = (await engineRequest(rig.engine.socketPath, 'GET', `/containers/${c.Id}/json`)).json;
  const port = Number(info?.NetworkSettings?.Ports?.['8080/tcp']?.[0]?.HostPort);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${stack}: no host port for 8080/tcp`);
  return port;
}

async function scenario(rig: StackEngineRig, publish: Publish, failure: Failure, rep: number): Promise<Record<string, unknown>> {
  const stack = `rb-${publish === 'start-first' ? 'sf' : 'so'}-${failure === 'crash-loop' ? 'cl' : 'nh'}-${rep}`;
  const port = publish === 'start-first' ? '127.0.0.1::8080' : `127.0.0.1:${await freePort()}:8080`;
  const first = await rig.deploy(stack, compose(1, failure, port));
  const one = await rig.waitJob(first.jobId);
  if (one.job.state !== 'succeeded') throw new Error(`${stack} revision 1: ${one.job.state}: ${one.job.error}`);
  const hostPort = await hostPortOf(rig, stack);
  const warm = await probeOnce(hostPort);
  if (!warm.ok) throw new Error(`${stack}: revision 1 does not answer on ${hostPort}: ${warm.what}`);
  const prober = startProber(hostPort, PROBE_MS);
  await sleep(500);
  const second = await rig.deploy(stack, compose(2, failure, port), { deadlineMs: DEADLINE_MS });
  const two = await rig.waitJob(second.jobId);
  await sleep(AFTER_MS);
  const probes = await prober.stop();
  const job = two.job;
  if (job.state !== 'failed' || !job.rolledBack) throw new Error(`${stack} revision 2: expected a failed, rolled-back job, got ${job.state} (rolledBack ${job.rolledBack}): ${job.error}`);
  const gate = stepTimes(job, 'health gate');
  const restore = stepTimes(job, 'restore the previous revision');
  const gateFailedAt = gate?.end ?? null;
  // Serving again: the first good answer after the last bad one (none bad: it never stopped).
  const lastBad = probes.map((p) => p.ok).lastIndexOf(false);
  const badAfterFinal = probes.filter((p) => !p.ok && p.at > two.finalSeenAt).length;
  const servingAgainAt = lastBad === -1 ? null : (probes[lastBad + 1]?.at ?? null);
  const running = (await rig.projectContainers(stack)).filter((c) => c.State === 'running');
  const back = running.length === 1 && running[0]!.Labels['bench.rev'] === '1';
  const sinceGate = (t: number | null): number | null => (t === null || gateFailedAt === null ? null : round(t - gateFailedAt));
  const result = {
    stack,
    publish,
    failure,
    hostPort,
    gateMs: gate?.end ? round(gate.end - gate.start) : null,
    gateFailedAfterDeadline: gate?.end && failure === 'never-healthy' ? round(gate.end - gate.start - DEADLINE_MS) : null,
    restoreStepMs: restore?.end ? round(restore.end - restore.start) : null,
    gateFailToJobFinalSeenMs: sinceGate(two.finalSeenAt),
    servedThroughout: lastBad === -1,
    /** From the failed gate to the first good answer after the last bad one (probe resolution). */
    gateFailToServingAgainMs: lastBad === -1 ? 0 : sinceGate(servingAgainAt),
    probes: probes.length,
    badAnswers: probes.filter((p) => !p.ok).length,
    badAfterJobFinal: badAfterFinal,
    badKinds: Object.fromEntries([...new Set(probes.filter((p) => !p.ok).map((p) => p.what))].map((w) => [w, probes.filter((p) => !p.ok && p.what === w).length])),
    firstBadAfterSubmitMs: lastBad === -1 ? null : round(probes.find((p) => !p.ok)!.at - second.submitAt),
    revision1Back: back,
    jobError: (job.error ?? '').split('\n')[0],
  };
  await rig.remove(stack);
  return result;
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  log('starting a private dockerd, a hub and an agent');
  const rig = await startStackEngineRig('rollbackbench');
  let out: Record<string, any>;
  try {
    const runs: Array<Record<string, any>> = [];
    for (let rep = 0; rep < REPS; rep++) {
      for (const { publish, failure } of SCENARIOS) {
        const r = await scenario(rig, publish, failure, rep);
        log(
          `${publish} ${failure} #${rep + 1}: gate failed → serving ${r.gateFailToServingAgainMs} ms, job final seen ${r.gateFailToJobFinalSeenMs} ms; ${r.badAnswers}/${r.probes} bad ${JSON.stringify(r.badKinds)}; revision 1 back: ${r.revision1Back}`,
        );
        runs.push(r);
      }
    }
    const summary = SCENARIOS.map(({ publish, failure }) => {
      const mine = runs.filter((r) => r.publish === publish && r.failure === failure);
      const serving = mine.map((r) => r.gateFailToServingAgainMs as number | null).filter((v): v is number => v !== null);
      return {
        publish,
        failure,
        runs: mine.length,
        gateFailToServingAgainMs: { median: median(serving), max: Math.max(...serving) },
        gateFailToJobFinalSeenMs: { median: median(mine.map((r) => r.gateFailToJobFinalSeenMs)), max: Math.max(...mine.map((r) => r.gateFailToJobFinalSeenMs)) },
        gateMs: { median: median(mine.map((r) => r.gateMs)) },
        badAnswers: mine.map((r) => r.badAnswers),
        probes: mine.map((r) => r.probes),
        servedThroughout: mine.every((r) => r.servedThroughout),
        revision1BackEveryTime: mine.every((r) => r.revision1Back),
        withinTarget: serving.length === mine.length && Math.max(...serving) <= TARGET_MS,
      };
    });
    out = {
      bench: 'stack-rollback',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine,
      config: { reps: REPS, gate: { deadlineMs: DEADLINE_MS, stableMs: 10_000 }, probeEveryMs: PROBE_MS, probeTimeoutMs: 1_000, healthcheck: { interval: '500ms', retries: 3 } },
      targets: { gateFailToServingAgainMs: TARGET_MS },
      notes: [
        'gateFailToServingAgainMs: from the end of the job\'s "health gate" step (the agent\'s verdict: the deadline for never-healthy, the first restart for crash-loop) to the first answer `rev1` after the last bad probe; 0 when no probe failed. Probe resolution: one probe per probeEveryMs.',
        'A bad probe: a refused or reset connection, a timeout (1 s), or an answer other than `rev1` (for stop-first never-healthy, revision 2 itself answers `rev2` on the same port while the gate waits).',
        'gateFailToJobFinalSeenMs: gate verdict → the job final as GET /api/v1/jobs/ID (polled every 50 ms) shows it (restore step, result back to the hub).',
        'revision1Back: after the job, exactly one running container, labelled bench.rev=1 (the revision 1 container itself, restarted for stop-first).',
      ],
      compose: {
        revision1: compose(1, 'never-healthy', '127.0.0.1::8080'),
        revision2NeverHealthy: compose(2, 'never-healthy', '127.0.0.1::8080'),
        revision2CrashLoop: compose(2, 'crash-loop', '127.0.0.1::8080'),
      },
      summary,
      runs,
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const lines = (out.summary as Array<Record<string, any>>).map(
    (s) =>
      `  ${`${s.publish} ${s.failure}`.padEnd(26)} serving again ${s.gateFailToServingAgainMs.median} ms (max ${s.gateFailToServingAgainMs.max})  job final ${s.gateFailToJobFinalSeenMs.median} ms  bad probes ${s.badAnswers.join(',')} of ${s.probes.join(',')}  ${s.withinTarget ? 'within' : 'OVER'} ${TARGET_MS / 1000} s`,
  );
  process.stdout.write(
    ['', `failed gate → previous revision serving again (deadline ${DEADLINE_MS} ms, ${REPS} runs each)`, ...lines, `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`, ''].join(
      '\n',
    ),
  );
}

runBench('stack-rollback', main);
