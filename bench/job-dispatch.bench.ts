/**
 * Job dispatch with a large fleet connected: a real hub process and 1,000 simulated agents
 * (bench/agent-simulator.ts --jobs, a second process: real channels, agents that answer jobs
 * `accepted` at once and `done` right after). Each job is filed the way a person files one, a
 * REST stack deploy (`POST /api/v1/stacks/NAME/deploy`, a one-service Compose file, one random
 * online node); measured from just before the request is written to the moment the simulated
 * agent's handler gets the delivery (both clocks are this machine's: timeOrigin + now()).
 *
 * Baseline in the same run: `GET /api/v1/nodes/X/ping` to random nodes (REST → the node's link
 * → the agent's no-op answer → back), the floor of any hub → agent round trip.
 *
 *   node --import tsx bench/job-dispatch.bench.ts
 *
 * Knobs (env): BENCH_AGENTS=1000 BENCH_JOBS=300 BENCH_PINGS=300 BENCH_CLIENTS=4 (concurrent phase)
 * BENCH_CPU_WINDOW_MS=10000. Writes bench/results/job-dispatch.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { runPool } from './lib/hub-http.ts';
import { oneServiceCompose, startJobFleetRig, type JobFleetRig } from './lib/job-fleet-rig.ts';
import { machineFacts } from './lib/machine.ts';
import { cpuTotalSeconds, sleep } from './lib/proc.ts';
import { preciseNow } from './lib/simulated-jobs.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'job-dispatch.json');
const AGENTS = envInt('BENCH_AGENTS', 1000, { integer: true });
const JOBS = envInt('BENCH_JOBS', 300, { integer: true });
const PINGS = envInt('BENCH_PINGS', 300, { integer: true });
const CLIENTS = Math.max(1, envInt('BENCH_CLIENTS', 4, { integer: true }));
const CPU_WINDOW_MS = envInt('BENCH_CPU_WINDOW_MS', 10_000, { integer: true });
const TARGET_P99_MS = 50;

const log = benchLog;
const round = (n: number, d = 2): number => Math.round(n * 10 ** d) / 10 ** d;
const cpuOf = cpuTotalSeconds;

interface Series {
  submitToAgentMs: LatencySummary;
  submitAnswerMs: LatencySummary;
  /** The agent saw the job before the deploy's 202 reached the client. */
  seenBeforeAnswer: number;
  errors: number;
  hubCpuMicrosPerJob: number;
  wallMs: number;
}

async function dispatchSeries(rig: JobFleetRig, label: string, count: number, clients: number, firstIndex: number): Promise<Series> {
  const toAgent: number[] = [];
  const answer: number[] = [];
  let seenBefore = 0;
  let errors = 0;
  const cpu0 = cpuOf(rig.hub.child.pid);
  const t0 = Date.now();
  await runPool(count, clients, async (i) => {
    const node = rig.nodes[Math.floor(Math.random() * rig.nodes.length)]!;
    const stack = `${label}-${firstIndex + i}`;
    const body = { compose: oneServiceCompose(stack), target: { node } };
    const submitAt = preciseNow();
    const res = await rig.http.request('POST', `/api/v1/stacks/${stack}/deploy`, body);
    const answeredAt = preciseNow();
    if (res.status !== 202) {
      errors++;
      if (errors <= 3) log(`deploy ${stack}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      return;
    }
    const jobId = (res.body as { jobs: string[] }).jobs[0]!;
    const seen = await rig.seen(jobId);
    if (seen.node !== node) throw new Error(`job ${jobId} for ${node} reached ${seen.node}`);
    toAgent.push(seen.seenAt - submitAt);
    answer.push(answeredAt - submitAt);
    if (seen.seenAt <= answeredAt) seenBefore++;
  });
  const wallMs = Date.now() - t0;
  const cpuS = cpuOf(rig.hub.child.pid) - cpu0;
  return {
    submitToAgentMs: summarize(toAgent),
    submitAnswerMs: summarize(answer),
    seenBeforeAnswer: seenBefore,
    errors,
    hubCpuMicrosPerJob: Math.round((cpuS / Math.max(1, toAgent.length)) * 1e6),
    wallMs,
  };
}

async function pingSeries(rig: JobFleetRig, count: number): Promise<{ clientMs: LatencySummary; errors: number }> {
  const samples: number[] = [];
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const node = rig.nodes[Math.floor(Math.random() * rig.nodes.length)]!;
    const res = await rig.http.request('GET', `/api/v1/nodes/${node}/ping`);
    if (res.status === 200) samples.push(res.ms);
    else errors++;
  }
  return { clientMs: summarize(samples), errors };
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  log(`starting a hub and ${AGENTS} simulated agents that answer jobs`);
  const rig = await startJobFleetRig({ agents: AGENTS, prefix: 'jd', jobDelayMs: 0, label: 'dispatch' });
  let out: Record<string, unknown>;
  try {
    log(`connected in ${rig.phasesMs.connectAllMs} ms; settling`);
    await sleep(3_000);
    log('warm-up: 20 deploys');
    await dispatchSeries(rig, 'warm', 20, 1, 0);
    log(`baseline: ${PINGS} node pings`);
    const ping = await pingSeries(rig, PINGS);
    log(`sequential: ${JOBS} deploys, one at a time, random nodes`);
    const sequential = await dispatchSeries(rig, 'seq', JOBS, 1, 0);
    log(`concurrent: ${JOBS} deploys, ${CLIENTS} clients`);
    const concurrent = await dispatchSeries(rig, 'conc', JOBS, CLIENTS, 0);
    log(`idle hub CPU over ${CPU_WINDOW_MS} ms with ${AGENTS} agents and ${JOBS * 2 + 20} stacks`);
    const cpu0 = cpuOf(rig.hub.child.pid);
    await sleep(CPU_WINDOW_MS);
    const idleCpuPercent = round(((cpuOf(rig.hub.child.pid) - cpu0) / (CPU_WINDOW_MS / 1000)) * 100, 1);
    const jobs = (await rig.http.json<Array<{ state: string }>>('GET', '/api/v1/jobs')).filter((j) => j.state !== 'succeeded').length;
    out = {
      bench: 'job-dispatch',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine,
      config: { agents: AGENTS, jobs: JOBS, pings: PINGS, concurrentClients: CLIENTS, simulatedJobDelayMs: 0 },
      targets: { submitToAgentP99Ms: TARGET_P99_MS },
      notes: [
        "submitToAgentMs: preciseNow() just before the REST deploy is written → the simulated agent's JOBS_PATH handler called (performance.timeOrigin + performance.now() in each process, same machine clock).",
        'submitAnswerMs: the same request until its 202 (the hub answers once the job is filed; delivery starts on the queue\'s "filed" event, so the agent often has the job first).',
        'Each deploy is a new stack (one service) to a random one of the connected nodes: the hub parses and validates the Compose file, stores the revision and rollout, files the job, delivers it.',
        'Baseline: GET /api/v1/nodes/X/ping to random nodes, sequential, same keep-alive client: the hub → agent round trip every delivery also makes.',
        'hubCpuMicrosPerJob: hub utime+stime over the series / jobs (includes the stack status message and job result each simulated agent sends back).',
      ],
      phasesMs: rig.phasesMs,
      baselinePing: ping,
      sequential,
      concurrent,
      withinTarget: { sequential: sequential.submitToAgentMs.p99 <= TARGET_P99_MS, concurrent: concurrent.submitToAgentMs.p99 <= TARGET_P99_MS },
      idleHubCpuPercentOfCoreAfter: idleCpuPercent,
      jobsNotSucceededAtEnd: jobs,
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const s = out.sequential as Series;
  const c = out.concurrent as Series;
  const p = out.baselinePing as { clientMs: LatencySummary };
  process.stdout.write(
    [
      '',
      `job dispatch, ${AGENTS} simulated agents connected (ms, p50 / p99 / max)`,
      `  baseline node ping           ${p.clientMs.p50} / ${p.clientMs.p99} / ${p.clientMs.max}`,
      `  submit → agent, sequential   ${s.submitToAgentMs.p50} / ${s.submitToAgentMs.p99} / ${s.submitToAgentMs.max}  (202 after ${s.submitAnswerMs.p50} / ${s.submitAnswerMs.p99}; hub ${s.hubCpuMicrosPerJob} µs CPU/job; errors ${s.errors})`,
      `  submit → agent, ${CLIENTS} clients    ${c.submitToAgentMs.p50} / ${c.submitToAgentMs.p99} / ${c.submitToAgentMs.max}  (${round((JOBS / c.wallMs) * 1000, 1)} jobs/s; errors ${c.errors})`,
      `  target p99 ≤ ${TARGET_P99_MS} ms: sequential ${s.submitToAgentMs.p99 <= TARGET_P99_MS ? 'met' : 'MISSED'}, concurrent ${c.submitToAgentMs.p99 <= TARGET_P99_MS ? 'met' : 'MISSED'}`,
      `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      '',
    ].join('\n'),
  );
}

runBench('job-dispatch', main);
