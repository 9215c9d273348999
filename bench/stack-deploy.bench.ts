/**
 * Deploy a 5-service stack (every service with a healthcheck, two waiting on a healthy
 * dependency) to healthy, side by side on one private dockerd:
 *
 *   direct          Debian's docker-compose v1 `up -d` straight on the engine's socket, then
 *                   polling the engine (every 50 ms) until every container runs and is healthy
 *                   (what dockfleet's gate waits for);
 *   dockfleet-rest  `POST /api/v1/stacks/NAME/deploy` through a real hub process to a real agent
 *                   process, then polling `GET /api/v1/jobs/ID` (every 50 ms) until it succeeded;
 *   dockfleet-cli   `dockfleet stack deploy NAME -f FILE --node N --wait` as a person runs it,
 *                   until the process exits 0.
 *
 * Same Compose file, a fresh project name each run, torn down between runs (not timed); runs
 * interleaved (the order rotates) so drift on the machine hits all three alike.
 *
 *   node --import tsx bench/stack-deploy.bench.ts
 *
 * Knobs (env): BENCH_RUNS=5 BENCH_HEALTH_INTERVAL=1s. Writes bench/results/stack-deploy.json.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BUSYBOX_IMAGE, engineRequest } from '../test/support/engines.ts';
import { run } from '../test/support/docker-cli.ts';
import { BIN, ROOT, childEnv } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { sleep } from './lib/proc.ts';
import { preciseNow } from './lib/simulated-jobs.ts';
import { startStackEngineRig, stepTimes, type StackEngineRig } from './lib/stack-engine-rig.ts';
import { median } from './lib/stats.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'stack-deploy.json');
const RUNS = Math.max(1, envInt('BENCH_RUNS', 5, { integer: true }));
const INTERVAL = process.env.BENCH_HEALTH_INTERVAL ?? '1s';
const SERVICES = 5;
const TARGET_RATIO = 1.2;
const COMPOSE_BIN = '/usr/bin/docker-compose';
const PATHS = ['direct', 'dockfleet-rest', 'dockfleet-cli'] as const;
type PathName = (typeof PATHS)[number];

const log = benchLog;
const round = (n: number, d = 1): number => Math.round(n * 10 ** d) / 10 ** d;

function service(name: string, dependsOn: string | null): string[] {
  return [
    `  ${name}:`,
    `    image: ${BUSYBOX_IMAGE}`,
    "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600']",
    '    stop_grace_period: 1s',
    '    healthcheck:',
    "      test: ['CMD-SHELL', 'test -f /tmp/ready']",
    `      interval: ${INTERVAL}`,
    '      timeout: 2s',
    '      retries: 3',
    ...(dependsOn ? ['    depends_on:', `      ${dependsOn}:`, '        condition: service_healthy'] : []),
  ];
}

/** db ← api ← web and cache ← worker: two waits on a healthy dependency, in both tools. */
const COMPOSE = ['services:', ...service('db', null), ...service('cache', null), ...service('api', 'db'), ...service('worker', 'cache'), ...service('web', 'api'), ''].join('\n');

/** The CLI finds the hub through --data: no DOCKFLEET_* variables from the caller's shell. */
function cliEnv(): NodeJS.ProcessEnv {
  const env = childEnv();
  for (const k of ['DOCKFLEET_HUB', 'DOCKFLEET_TOKEN', 'DOCKFLEET_CA']) delete env[k];
  return env;
}

async function allHealthy(rig: StackEngineRig, project: string): Promise<boolean> {
  const listed = await rig.projectContainers(project);
  if (listed.length !== SERVICES) return false;
  for (const c of listed) {
    const info = (await engineRequest(rig.engine.socketPath, 'GET', `/containers/${c.Id}/json`)).json;
    if (info?.State?.Status !== 'running' || info.State.Health?.Status !== 'healthy') return false;
  }
  return true;
}

interface RunResult {
  path: PathName;
  project: string;
  ms: number;
  /** dockfleet: how the time splits, from the job's own steps (agent clock). */
  detail?: Record<string, number>;
}

async function direct(rig: StackEngineRig, project: string, file: string): Promise<RunResult> {
  const t0 = preciseNow();
  const up = await run(COMPOSE_BIN, ['-p', project, '-f', file, 'up', '-d'], { DOCKER_HOST: rig.engine.dockerHost }, { cwd: rig.work, timeoutMs: 300_000 });
  if (up.code !== 0) throw new Error(`docker-compose up: ${up.stderr}`);
  const upMs = preciseNow() - t0;
  while (!(await allHealthy(rig, project))) {
    if (preciseNow() - t0 > 300_000) throw new Error(`${project} not healthy within 300 s`);
    await sleep(50);
  }
  return { path: 'direct', project, ms: round(preciseNow() - t0), detail: { composeUpExitMs: round(upMs) } };
}

async function viaRest(rig: StackEngineRig, project: string): Promise<RunResult> {
  const { jobId, submitAt } = await rig.deploy(project, COMPOSE);
  const { job, finalSeenAt } = await rig.waitJob(jobId);
  if (job.state !== 'succeeded') throw new Error(`${project}: job ${job.state}: ${job.error}`);
  const gate = stepTimes(job, 'health gate');
  const resolve = stepTimes(job, 'resolve images');
  const detail: Record<string, number> = {};
  if (resolve) detail.submitToFirstStepMs = round(resolve.start - submitAt);
  if (gate?.end) {
    detail.servicesMs = round(gate.start - (resolve?.start ?? gate.start));
    detail.gateMs = round(gate.end - gate.start);
    detail.gateEndToSeenMs = round(finalSeenAt - gate.end);
  }
  return { path: 'dockfleet-rest', project, ms: round(finalSeenAt - submitAt), detail };
}

async function viaCli(rig: StackEngineRig, project: string, file: string): Promise<RunResult> {
  const t0 = preciseNow();
  const child = spawn(process.execPath, [BIN, 'stack', 'deploy', project, '-f', file, '--node', rig.node, '--wait', '--data', rig.hub.dataDir], {
    cwd: rig.work,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr.on('data', (c: Buffer) => (text += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`dockfleet stack deploy exited ${code}: ${text.slice(-1000)}`);
  return { path: 'dockfleet-cli', project, ms: round(preciseNow() - t0) };
}

async function cliStartupMs(rig: StackEngineRig): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = preciseNow();
    const r = await run(process.execPath, [BIN, 'stack', 'ls', '--data', rig.hub.dataDir], cliEnv(), { cwd: ROOT });
    if (r.code !== 0) throw new Error(`dockfleet stack ls: ${r.stderr}`);
    samples.push(preciseNow() - t0);
  }
  return round(median(samples));
}

async function composeStartupMs(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = preciseNow();
    await run(COMPOSE_BIN, ['version'], {});
    samples.push(preciseNow() - t0);
  }
  return round(median(samples));
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = machineFacts();
  const composeVersion = (await run(COMPOSE_BIN, ['version', '--short'], {})).stdout.trim();
  log('starting a private dockerd, a hub and an agent');
  const rig = await startStackEngineRig('deploybench');
  let out: Record<string, any>;
  try {
    const file = join(rig.work, 'compose.yml');
    await writeFile(file, COMPOSE);
    const results: RunResult[] = [];
    const once = async (path: PathName, project: string): Promise<RunResult> => {
      const r = path === 'direct' ? await direct(rig, project, file) : path === 'dockfleet-rest' ? await viaRest(rig, project) : await viaCli(rig, project, file);
      if (path === 'direct') {
        const down = await run(COMPOSE_BIN, ['-p', project, '-f', file, 'down', '-t', '1'], { DOCKER_HOST: rig.engine.dockerHost }, { cwd: rig.work, timeoutMs: 120_000 });
        if (down.code !== 0) throw new Error(`docker-compose down: ${down.stderr}`);
      } else {
        await rig.remove(project);
      }
      if ((await rig.projectContainers(project)).length !== 0) throw new Error(`${project} left containers behind`);
      return r;
    };
    log('warm-up: one run of each');
    for (const path of PATHS) await once(path, `warm-${path.replace('dockfleet-', 'df')}`);
    for (let i = 0; i < RUNS; i++) {
      const order = [...PATHS.slice(i % PATHS.length), ...PATHS.slice(0, i % PATHS.length)];
      for (const path of order) {
        const r = await once(path, `${path.replace('dockfleet-', 'df')}-${i}`);
        log(`run ${i + 1}/${RUNS} ${path}: ${r.ms} ms ${r.detail ? JSON.stringify(r.detail) : ''}`);
        results.push(r);
      }
    }
    const stats = (path: PathName): Record<string, number> => {
      const ms = results.filter((r) => r.path === path).map((r) => r.ms);
      return { median: median(ms), min: Math.min(...ms), max: Math.max(...ms), spread: round(Math.max(...ms) - Math.min(...ms)) };
    };
    const summary = Object.fromEntries(PATHS.map((p) => [p, stats(p)])) as Record<PathName, Record<string, number>>;
    const ratio = (p: PathName): number => round(summary[p].median! / summary.direct.median!, 3);
    out = {
      bench: 'stack-deploy',
      timestamp: new Date().toISOString(),
      durationMs: Date.now() - started,
      machine: { ...machine, dockerCompose: composeVersion },
      config: {
        runs: RUNS,
        services: SERVICES,
        healthcheck: { interval: INTERVAL, timeout: '2s', retries: 3 },
        gate: { stableMs: 10_000, deadlineMs: 120_000, note: 'the defaults (not set by the deploy); every service has a healthcheck, so the stable window never applies' },
        waitPollMs: { direct: 50, dockfleetRest: 50, agentGate: 200 },
      },
      compose: COMPOSE,
      targets: { ratioToDirect: TARGET_RATIO },
      notes: [
        'direct: docker-compose v1 `up -d` (it waits for service_healthy dependencies itself), then the engine polled every 50 ms until all 5 containers run and are healthy.',
        "dockfleet-rest: REST deploy → job final as GET /api/v1/jobs/ID (polled every 50 ms) shows it; the agent's gate polls the engine every 200 ms.",
        'dockfleet-cli: the whole `dockfleet stack deploy --wait` process, Node and tsx start-up included (cliStartupMs: `dockfleet stack ls` for scale; composeStartupMs: `docker-compose version`).',
        'detail (dockfleet-rest, agent clock): submitToFirstStepMs, servicesMs (images resolved, policy checked, containers created and started, depends_on waits), gateMs, gateEndToSeenMs (result back at the hub and seen by the poll).',
        'Each run uses a fresh project name and is removed before the next (docker-compose down -t 1; dockfleet: DELETE /api/v1/stacks/NAME and its job); teardown is not timed.',
      ],
      cliStartupMs: await cliStartupMs(rig),
      composeStartupMs: await composeStartupMs(),
      summary,
      ratioToDirect: { 'dockfleet-rest': ratio('dockfleet-rest'), 'dockfleet-cli': ratio('dockfleet-cli') },
      withinTarget: { 'dockfleet-rest': ratio('dockfleet-rest') <= TARGET_RATIO, 'dockfleet-cli': ratio('dockfleet-cli') <= TARGET_RATIO },
      runs: results,
    };
  } finally {
    await rig.stop();
  }
  await mkdir(dirname(RESULTS), { recursive: true });
  await writeFile(RESULTS, `${JSON.stringify(out, null, 2)}\n`);
  const line = (p: PathName): string =>
    `  ${p.padEnd(15)} median ${out.summary[p].median} ms (min ${out.summary[p].min}, max ${out.summary[p].max})${p === 'direct' ? '' : `  ×${out.ratioToDirect[p]} ${out.withinTarget[p] ? 'within' : 'OVER'} ${TARGET_RATIO}×`}`;
  process.stdout.write(
    [
      '',
      `deploy a ${SERVICES}-service stack to healthy, ${RUNS} runs each (healthcheck interval ${INTERVAL})`,
      ...PATHS.map(line),
      `  CLI start-up: dockfleet ${out.cliStartupMs} ms, docker-compose ${out.composeStartupMs} ms`,
      `wrote ${RESULTS} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      '',
    ].join('\n'),
  );
}

runBench('stack-deploy', main);
