/** One private engine and a StackApplier on it, with the default host policy, for stack tests. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EngineClient } from '../../src/agent/engine-client.ts';
import { engineHostView } from '../../src/agent/policy/host-view.ts';
import { PolicyGate } from '../../src/agent/policy/policy-gate.ts';
import { AgentPolicy } from '../../src/agent/policy/policy.ts';
import { StackStateDir } from '../../src/agent/stacks/desired-state.ts';
import { StackApplier } from '../../src/agent/stacks/stack-job-runner.ts';
import { StackEngine } from '../../src/agent/stacks/stack-engine.ts';
import type { JobContext } from '../../src/agent/jobs/job-runner.ts';
import type { JobKind, JobRequest, JobResult } from '../../src/protocol/jobs.ts';
import type { StackRevision } from '../../src/protocol/stacks.ts';
import { engineRequest, startEngines, type TestEngine } from './engines.ts';

export interface StackRig {
  engine: TestEngine;
  stackEngine: StackEngine;
  state: StackStateDir;
  stateDir: string;
  applier: StackApplier;
  /** `applier`: another applier on the same engine and state (one with another policy, say). */
  run(
    kind: JobKind,
    stack: string,
    target: StackRevision | null,
    opts?: { secrets?: Record<string, string>; files?: Record<string, string>; ctx?: Partial<JobContext>; applier?: StackApplier },
  ): Promise<{ result: JobResult; logs: string[]; steps: string[] }>;
  /** An applier on this engine and state under another host policy (the policy file's JSON). */
  applierWith(policy: unknown): Promise<StackApplier>;
  /** The project's containers: name → config-hash, running. */
  containers(stack: string): Promise<Record<string, { hash: string; state: string; service: string }>>;
  names(kind: 'networks' | 'volumes', stack: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startStackRig(prefix: string): Promise<StackRig> {
  const engine = (await startEngines(1, { prefix }))[0]!;
  const client = new EngineClient(engine.dockerHost);
  const stackEngine = new StackEngine(client);
  const stateDir = await mkdtemp(join(tmpdir(), `dockfleet-${prefix}-`));
  const state = new StackStateDir(stateDir);
  const policy = new PolicyGate(await AgentPolicy.load(null), engineHostView(client));
  const applier = new StackApplier({ engine: stackEngine, policy, state });
  const filter = (stack: string): string => encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${stack}`] }));
  return {
    engine,
    stackEngine,
    state,
    stateDir,
    applier,
    async run(kind, stack, target, opts = {}) {
      const logs: string[] = [];
      const steps: string[] = [];
      const job: JobRequest = {
        id: `job_${randomBytes(12).toString('hex')}`,
        kind,
        node: 'n1',
        stack,
        target,
        secrets: { env: opts.secrets ?? {}, files: opts.files ?? {} },
        createdAt: Date.now(),
        expiresAt: Date.now() + 3_600_000,
      };
      const ctx: JobContext = {
        step: async (name, run) => {
          steps.push(name);
          return run();
        },
        log: (line) => logs.push(line),
        signal: new AbortController().signal,
        resumed: false,
        ...opts.ctx,
      };
      const result = await (opts.applier ?? applier).run(job, ctx);
      return { result, logs, steps };
    },
    async applierWith(policyJson) {
      const file = join(stateDir, `policy-${randomBytes(4).toString('hex')}.json`);
      await writeFile(file, JSON.stringify(policyJson));
      return new StackApplier({ engine: stackEngine, policy: new PolicyGate(await AgentPolicy.load(file), engineHostView(client)), state });
    },
    async containers(stack) {
      const r = await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filter(stack)}`);
      const out: Record<string, { hash: string; state: string; service: string }> = {};
      for (const c of r.json as Array<{ Names: string[]; State: string; Labels: Record<string, string> }>) {
        out[c.Names[0]!.slice(1)] = { hash: c.Labels['com.docker.compose.config-hash']!, state: c.State, service: c.Labels['com.docker.compose.service']! };
      }
      return out;
    },
    async names(kind, stack) {
      const r = await engineRequest(engine.socketPath, 'GET', `/${kind}?filters=${filter(stack)}`);
      const list = kind === 'volumes' ? (r.json.Volumes ?? []) : r.json;
      return (list as Array<{ Name: string }>).map((x) => x.Name).sort();
    },
    async close() {
      client.close();
      await engine.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
