/**
 * A private dockerd (test/support/engines.ts, busybox imported), a real hub process and a real
 * agent process beside it: for the stack deploy and rollback benches. Stacks are deployed the
 * way the REST API takes them, and jobs are followed through `GET /api/v1/jobs/ID`. Stops only
 * what it started, also when the bench fails.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineRequest, startEngines, stopEngines, type TestEngine } from '../../test/support/engines.ts';
import { policyJson, startAgentProcess, startHubProcess, type HubProcess } from './dockfleet-procs.ts';
import { HubHttp } from './hub-http.ts';
import { freePort, sleep, type Child } from './proc.ts';
import { preciseNow } from './simulated-jobs.ts';

export interface JobDetail {
  id: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed';
  error: string | null;
  rolledBack: boolean;
  revision: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  steps: Array<{ name: string; state: string; startedAt: string; finishedAt: string | null }>;
}

export interface StackEngineRig {
  engine: TestEngine;
  hub: HubProcess;
  agent: Child;
  node: string;
  work: string;
  http: HubHttp;
  /** REST deploy to the rig's node; `submitAt` is preciseNow() just before the request. */
  deploy(stack: string, compose: string, gate?: { stableMs?: number; deadlineMs?: number }): Promise<{ jobId: string; submitAt: number }>;
  /** Polls the job every `everyMs` until it is final; `finalSeenAt` is when the poll saw it. */
  waitJob(jobId: string, timeoutMs?: number, everyMs?: number): Promise<{ job: JobDetail; finalSeenAt: number }>;
  /** `DELETE /api/v1/stacks/NAME` and its job. */
  remove(stack: string): Promise<void>;
  /** Containers of a Compose project on the engine (all states). */
  projectContainers(project: string): Promise<Array<{ Id: string; Names: string[]; State: string; Labels: Record<string, string> }>>;
  stop(): Promise<void>;
}

const tempDirs = new Set<string>();
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export async function startStackEngineRig(label: string, node = 'bench-host'): Promise<StackEngineRig> {
  const [engine] = (await startEngines(1, { prefix: label })) as [TestEngine];
  const work = await mkdtemp(join(tmpdir(), `dockfleet-bench-${label}-`));
  tempDirs.add(work);
  let hub: HubProcess | null = null;
  let agent: Child | null = null;
  const stop = async (): Promise<void> => {
    await agent?.stop(5_000);
    await hub?.child.stop(5_000);
    await stopEngines([engine]);
    await rm(work, { recursive: true, force: true });
    tempDirs.delete(work);
  };
  try {
    const policyFile = join(work, 'policy.json');
    await writeFile(policyFile, policyJson());
    hub = await startHubProcess(join(work, 'hub'), `127.0.0.1:${await freePort()}`);
    agent = await startAgentProcess({ hub, name: node, stateDir: join(work, 'agent'), docker: engine.dockerHost, policyFile });
  } catch (err) {
    await stop();
    throw err;
  }
  const http = new HubHttp(hub.url, hub.caPem, hub.token, 4);
  const rig: StackEngineRig = {
    engine,
    hub,
    agent,
    node,
    work,
    http,
    async deploy(stack, compose, gate) {
      const submitAt = preciseNow();
      const res = await http.request('POST', `/api/v1/stacks/${stack}/deploy`, { compose, target: { node }, ...(gate ? { gate } : {}) });
      if (res.status !== 202) throw new Error(`deploy ${stack}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
      return { jobId: (res.body as { jobs: string[] }).jobs[0]!, submitAt };
    },
    async waitJob(jobId, timeoutMs = 300_000, everyMs = 50) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const job = await http.json<JobDetail>('GET', `/api/v1/jobs/${jobId}`);
        if (job.state === 'succeeded' || job.state === 'failed') return { job, finalSeenAt: preciseNow() };
        if (Date.now() > until) throw new Error(`job ${jobId} still ${job.state} after ${timeoutMs} ms`);
        await sleep(everyMs);
      }
    },
    async remove(stack) {
      const res = await http.json<{ jobs: string[] }>('DELETE', `/api/v1/stacks/${stack}`);
      for (const id of res.jobs) {
        const { job } = await rig.waitJob(id, 120_000, 200);
        if (job.state !== 'succeeded') throw new Error(`removing ${stack}: job ${id} ${job.state}: ${job.error}`);
      }
    },
    async projectContainers(project) {
      const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));
      return (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json;
    },
    async stop() {
      http.close();
      await stop();
    },
  };
  return rig;
}

/** Step timing from a job detail: the named step's start and end in epoch ms, or null. */
export function stepTimes(job: JobDetail, name: string): { start: number; end: number | null } | null {
  // A step may be listed as it started and again as it ended: the last word counts.
  const step = [...job.steps].reverse().find((s) => s.name === name);
  if (!step) return null;
  return { start: Date.parse(step.startedAt), end: step.finishedAt === null ? null : Date.parse(step.finishedAt) };
}
