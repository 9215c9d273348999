/** Jobs for tests: a valid JobRequest, a delivery through a real hub's link to a real agent
 * (POST JOBS_PATH, the answer read as NDJSON events), a scripted runner in place of the stack
 * applier (steps that sleep, fail, throw, log), and an in-process agent that uses it. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigFrom } from '../../src/agent/config.ts';
import type { JobContext, StackJobRunner } from '../../src/agent/jobs/job-runner.ts';
import { runAgent } from '../../src/agent/run-agent.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import { JOBS_PATH, type JobEvent, type JobRequest, type JobResult } from '../../src/protocol/jobs.ts';
import type { StackRevision } from '../../src/protocol/stacks.ts';
import { NO_ENGINE } from './agent-fixture.ts';
import type { TestHub } from './hub-fixture.ts';

export function newJobId(): string {
  return `job_${randomBytes(12).toString('hex')}`;
}

export function revision(stack: string, rev = 1): StackRevision {
  const project = {
    name: stack,
    services: {
      web: {
        image: 'busybox:latest',
        containerName: null,
        command: ['sleep', '3600'],
        entrypoint: null,
        environment: { MODE: 'test' },
        secretEnvironment: ['API_TOKEN'],
        ports: [],
        mounts: [],
        networks: {},
        labels: {},
        restart: 'no' as const,
        healthcheck: null,
        dependsOn: {},
        user: null,
        workingDir: null,
        capAdd: [],
        capDrop: [],
        devices: [],
        resources: { memoryBytes: null, nanoCpus: null, pidsLimit: null },
        logging: null,
        extraHosts: [],
        secrets: [],
        configs: [],
        stopGracePeriodNs: null,
      },
    },
    networks: {},
    volumes: {},
    configs: {},
    secretFiles: [],
  };
  return { stack, revision: rev, project, gate: { stableMs: 0, deadlineMs: 5_000 }, digest: createHash('sha256').update(JSON.stringify(project)).digest('hex') };
}

export function makeJob(node: string, overrides: Partial<JobRequest> = {}): JobRequest {
  const stack = overrides.stack ?? 'shop';
  const now = Date.now();
  return {
    id: newJobId(),
    kind: 'deploy',
    node,
    stack,
    target: revision(stack),
    secrets: { env: {}, files: {} },
    createdAt: now,
    expiresAt: now + 3_600_000,
    ...overrides,
  };
}

export interface DeliveryAnswer {
  status: number;
  contentType: string | undefined;
  events: JobEvent[];
}

/** Delivers a body (a job, or anything) to NODE through the hub's link; resolves when the agent ends the answer.
 * `onEvent` sees each event as it comes; `signal` cancels the delivery (the hub going away). */
export async function deliver(hub: TestHub, node: string, body: unknown, opts: { onEvent?: (e: JobEvent) => void; signal?: AbortSignal; raw?: Buffer } = {}): Promise<DeliveryAnswer> {
  const link = hub.hub.registry.requireLink(node);
  const payload = opts.raw ?? Buffer.from(JSON.stringify(body));
  const res = await link.request({
    method: 'POST',
    path: JOBS_PATH,
    headers: { 'content-type': 'application/json' },
    body: payload,
    timeoutMs: 30_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const events: JobEvent[] = [];
  let buffered = '';
  await new Promise<void>((resolve) => {
    res.stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const event = JSON.parse(buffered.slice(0, nl)) as JobEvent;
        buffered = buffered.slice(nl + 1);
        events.push(event);
        opts.onEvent?.(event);
      }
    });
    res.stream.once('end', resolve);
    res.stream.once('close', resolve);
    res.stream.once('error', () => resolve());
  });
  return { status: res.status, contentType: res.headers['content-type'] as string | undefined, events };
}

export function resultOf(answer: DeliveryAnswer): JobResult | undefined {
  const done = answer.events.find((e) => e.t === 'done');
  return done?.t === 'done' ? done.result : undefined;
}

export interface ScriptedCall {
  id: string;
  resumed: boolean;
  startedAt: number;
  finishedAt: number | null;
}

/** What a scripted job does, by stack name: `steps` run in order, each sleeping `stepMs`; a step named
 * `fail` throws inside ctx.step, `boom` throws outside any step; `say` lines are logged first. */
export interface Script {
  steps: string[];
  stepMs: number;
  say?: string[];
  /** The runner's error text when it fails (may quote a secret, to prove redaction). */
  error?: string;
  /** Throws from run() itself instead of returning a result. */
  throws?: string;
}

export class ScriptedRunner implements StackJobRunner {
  readonly calls: ScriptedCall[] = [];
  readonly #scripts: Map<string, Script>;

  constructor(scripts: Record<string, Script>) {
    this.#scripts = new Map(Object.entries(scripts));
  }

  async run(job: JobRequest, ctx: JobContext): Promise<JobResult> {
    const call: ScriptedCall = { id: job.id, resumed: ctx.resumed, startedAt: Date.now(), finishedAt: null };
    this.calls.push(call);
    const script = this.#scripts.get(job.stack) ?? { steps: ['apply'], stepMs: 10 };
    for (const line of script.say ?? []) ctx.log(line);
    try {
      for (const name of script.steps) {
        await ctx.step(name, async () => {
          await new Promise((r) => setTimeout(r, script.stepMs));
          if (name === 'fail') throw new Error(script.error ?? 'step failed');
        });
      }
      if (script.throws !== undefined) throw new Error(script.throws);
      return { state: 'succeeded', error: null, revision: job.target?.revision ?? 0, rolledBack: false, startedAt: call.startedAt, finishedAt: Date.now() };
    } catch (err) {
      if (script.throws !== undefined) throw err;
      return { state: 'failed', error: (err as Error).message, revision: 0, rolledBack: true, startedAt: call.startedAt, finishedAt: Date.now() };
    } finally {
      call.finishedAt = Date.now();
    }
  }
}

export interface JobTestAgent {
  stateDir: string;
  connects: number;
  stop(): Promise<void>;
  waitConnected(count?: number): Promise<void>;
}

/** A real agent in this process (real channel) whose jobs go to `runner`. */
export async function startJobAgent(opts: { hubUrl: string; code: string; name: string; runner: StackJobRunner; stateDir?: string }): Promise<JobTestAgent> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'dockfleet-jobs-agent-')));
  const config = agentConfigFrom({ hub: opts.hubUrl, code: opts.code, name: opts.name, state: stateDir, docker: NO_ENGINE, policy: join(stateDir, 'no-policy.json') });
  const stop = new AbortController();
  const agent: JobTestAgent = {
    stateDir,
    connects: 0,
    async stop() {
      stop.abort();
      await done.catch(() => {});
    },
    async waitConnected(count = 1) {
      const deadline = Date.now() + 10_000;
      while (agent.connects < count) {
        if (Date.now() > deadline) throw new Error(`agent did not connect ${count}× in 10 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  const done = runAgent(config, silentLogger(), stop.signal, { runner: opts.runner, onConnected: () => void agent.connects++ });
  done.catch(() => {});
  return agent;
}
