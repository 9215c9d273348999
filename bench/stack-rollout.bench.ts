/**
 * Rollout of one revision to 100 nodes in waves of 10: a real hub process and 100 simulated
 * agents (bench/agent-simulator.ts --jobs, a second process) that answer each job `accepted` at
 * once and `done` 50 ms later, as a quick host would. A REST deploy names all 100 nodes with
 * `parallel: 10`; measured from just before the request to the rollout's `finishedAt`, with the
 * hub's CPU time (/proc/PID/stat) over the same span, and per wave from the agents' own
 * timestamps: how long the hub takes between one wave's last job finishing and the next wave's
 * first job reaching its agent.
 *
 * Baselines in the same run: the floor (waves × job time: 10 × 50 ms), the same deploy in one
 * wave (`parallel: 100`), and the idle hub's CPU with the same fleet.
 *
 *   node --import tsx bench/stack-rollout.bench.ts
 *
 * Knobs (env): BENCH_AGENTS=100 BENCH_PARALLEL=10 BENCH_JOB_MS=50 BENCH_REPS=5.
 * Writes bench/results/stack-rollout.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { oneServiceCompose, startJobFleetRig, type JobFleetRig } from './lib/job-fleet-rig.ts';
import { machineFacts } from './lib/machine.ts';
import { cpuTotalSeconds, sleep } from './lib/proc.ts';
import { preciseNow } from './lib/simulated-jobs.ts';
import { median, summarize } from './lib/stats.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'stack-rollout.json');
const AGENTS = envInt('BENCH_AGENTS', 100, { integer: true });
const PARALLEL = Math.max(1, envInt('BENCH_PARALLEL', 10, { integer: true }));
const JOB_MS = envInt('BENCH_JOB_MS', 50);
const REPS = Math.max(1, envInt('BENCH_REPS', 5, { integer: true }));
const STACK = 'fleet-app';

const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;
const cpuOf = cpuTotalSeconds;

interface RolloutRun {
  revision: number;
  parallel: number;
  waves: number;
  totalMs: number;
  /** The 202 of the deploy. */
  submitAnswerMs: number;
  hubCpuS: number;
  hubCpuPercentOfCore: number;
  /** Per wave: first job seen → last job seen, in ms after the submit. */
  waveSpansMs: Array<[number, number]>;
  /** Next wave's first job seen − this wave's last job seen − job time: the hub's turn between waves. */
  interWaveGapMs: number[];
  state: string;
}

async function rollout(rig: JobFleetRig, tag: string, parallel: number): Promise<RolloutRun> {
  const body = { compose: oneServiceCompose(tag), target: { nodes: rig.nodes }, parallel };
  const cpu0 = cpuOf(rig.hub.child.pid);
  const submitAt = preciseNow();
  const res = await rig.http.request('POST', `/api/v1/stacks/${STACK}/deploy`, body);
  const submitAnswerMs = preciseNow() - submitAt;
  if (res.status !== 202) throw new Error(`deploy: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  const { rollout: id, revision: rev } = res.body as { rollout: string; revision: number };
  let view: { state: string; finishedAt: string | null; jobs: string[] };
  for (;;) {
    view = await rig.http.json('GET', `/api/v1/stacks/${STACK}/rollouts/${id}`);
    if (view.state !== 'running') break;
    if (preciseNow() - submitAt > 300_000) throw new Error(`rollout ${id} still running after 300 s`);
    await sleep(100);
  }
  const cpuS = cpuOf(rig.hub.child.pid) - cpu0;
  const totalMs = Date.parse(view.finishedAt!) - submitAt;
  const seen = await Promise.all(view.jobs.map((j) => rig.seen(j, 5_000)));
  const order = new Map(rig.nodes.map((n, i) => [n, i]));
  const byWave: number[][] = [];
  for (const s of seen) (byWave[Math.floor(order.get(s.node)! / parallel)] ??= []).push(s.seenAt - submitAt);
  const spans = byWave.map((w) => [Math.min(...w), Math.max(...w)] as [number, number]);
  const gaps = spans.slice(1).map((s, i) => s[0] - spans[i]![1] - JOB_MS);
  return {
    revision: rev,
    parallel,
    waves: spans.length,
    totalMs: round(totalMs),
    submitAnswerMs: round(submitAnswerMs),
    hubCpuS: round(cpuS, 2),
    hubCpuPercentOfCore: round((cpuS / (totalMs / 1000)) * 100),
    waveSpansMs: spans.map(([a, b]) => [round(a), round(b)]),
    interWaveGapMs: gaps.map((g) => round(g)),
    state: view.state,
  };
}

function summary(runs: RolloutRun[]): Record<string, unknown> {
  const totals = runs.map((r) => r.totalMs);
  return {
    totalMs: { median: median(totals), min: Math.min(...totals), max: Math.max(...totals) },
    hubCpuS: { median: median(runs.map((r) => r.hubCpuS)), max: Math.max(...runs.map((r) => r.hubCpuS)) },
    hubCpuPercentOfCore: { median: median(runs.map((r) => r.hubCpuPercentOfCore)) },
    interWaveGapMs: summarize(runs.flatMap((r) => r.interWaveGapMs)),
    allSucceeded: runs.every((r) => r.state === 'succeeded'),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  log(`starting a hub and ${AGENTS} simulated agents (jobs take ${JOB_MS} ms)`);
  const rig = await startJobFleetRig({ agents: AGENTS, prefix: 'ro', jobDelayMs: JOB_MS, label: 'rollout' });
  let out: Record<string, any>;
  try {
    await sleep(3_000);
    const idle0 = cpuOf(rig.hub.child.pid);
    await sleep(5_000);
    const idleCpuPercent = round(((cpuOf(rig.hub.child.pid) - idle0) / 5) * 100);
    log('warm-up rollout');
    await rollout(rig, 'warm', PARALLEL);
    const waved: RolloutRun[] = [];
    const oneWave: RolloutRun[] = [];
    for (let i = 0; i < REPS; i++) {
      log(`rollout ${i + 1}/${REPS}: ${AGENTS} nodes in waves of ${PARALLEL}, then in one wave`);
      waved.push(await rollout(rig, `waves-${i}`, PARALLEL));
      oneWave.push(await rollout(rig, `one-${i}`, AGENTS));
    }
    const waves = Math.ceil(AGENTS / PARALLEL);
    out = {
      bench: 'stack-rollout',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine,
      config: { agents: AGENTS, parallel: PARALLEL, simulatedJobMs: JOB_MS, reps: REPS, waves },
      notes: [
        "totalMs: preciseNow() before the REST deploy → the rollout's finishedAt (hub clock, ms) as GET /api/v1/stacks/NAME/rollouts/ID shows it (polled every 100 ms, so the poll adds nothing to the figure).",
        'hubCpuS: hub utime+stime from /proc/PID/stat between the submit and the poll that saw the rollout final (includes those polls).',
        'floorMs = waves × simulated job time: what the rollout would take if the hub took no time at all.',
        "interWaveGapMs: from the agents' timestamps; what the hub spends between a wave finishing and the next wave's first job reaching its agent (result stored, rollout progress stored, jobs filed, delivered).",
        'oneWave: the same deploy with parallel = number of nodes, in the same run.',
        'The simulated agents also send their stack status (healthy, revision N) after each job, as a real agent does.',
      ],
      phasesMs: rig.phasesMs,
      idleHubCpuPercentOfCore: idleCpuPercent,
      floorMs: waves * JOB_MS,
      waves: { summary: summary(waved), runs: waved },
      oneWave: { summary: summary(oneWave), runs: oneWave },
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const w = out.waves.summary;
  const o = out.oneWave.summary;
  process.stdout.write(
    [
      '',
      `rollout of one revision to ${AGENTS} simulated nodes (jobs ${JOB_MS} ms), ${REPS} runs`,
      `  waves of ${PARALLEL}: total median ${w.totalMs.median} ms (min ${w.totalMs.min}, max ${w.totalMs.max}; floor ${out.floorMs} ms); hub CPU ${w.hubCpuS.median} s (${w.hubCpuPercentOfCore.median} % of a core); gap between waves p50 ${w.interWaveGapMs.p50} ms, p99 ${w.interWaveGapMs.p99} ms`,
      `  one wave:    total median ${o.totalMs.median} ms (min ${o.totalMs.min}, max ${o.totalMs.max}); hub CPU ${o.hubCpuS.median} s`,
      `  idle hub with ${AGENTS} agents: ${out.idleHubCpuPercentOfCore} % of a core; all rollouts succeeded: ${w.allSucceeded && o.allSucceeded}`,
      `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      '',
    ].join('\n'),
  );
}

runBench('stack-rollout', main);
