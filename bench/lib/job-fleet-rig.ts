/**
 * A real hub process and a simulator process (bench/agent-simulator.ts --jobs) whose agents
 * answer stack jobs: for the job dispatch and rollout benches. The simulator prints each job's
 * first delivery with the time its agent saw it; the rig keeps those and lets a bench wait for
 * one. Stops only the processes it started.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, childEnv, startHubProcess, type HubProcess } from './dockfleet-procs.ts';
import { HubHttp } from './hub-http.ts';
import { freePort, startChild, type Child } from './proc.ts';

export interface SeenJob {
  node: string;
  /** Epoch ms (sub-ms precision) when the simulated agent's handler got the delivery. */
  seenAt: number;
}

export interface JobFleetRig {
  hub: HubProcess;
  sim: Child;
  http: HubHttp;
  nodes: string[];
  phasesMs: Record<string, number>;
  /** Resolves when the simulator reports the job (at once if it already did). */
  seen(jobId: string, timeoutMs?: number): Promise<SeenJob>;
  setJobDelay(ms: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startJobFleetRig(opts: { agents: number; prefix: string; jobDelayMs: number; label: string }): Promise<JobFleetRig> {
  const work = await mkdtemp(join(tmpdir(), `dockfleet-bench-${opts.label}-`));
  const phasesMs: Record<string, number> = {};
  let since = Date.now();
  const hub = await startHubProcess(join(work, 'hub'), `127.0.0.1:${await freePort()}`);
  phasesMs.hubStartMs = Date.now() - since;
  const seen = new Map<string, SeenJob>();
  const waiters = new Map<string, (j: SeenJob) => void>();
  since = Date.now();
  const sim = startChild(
    'agent-simulator',
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bench', 'agent-simulator.ts'),
      '--hub',
      hub.url,
      '--ca',
      hub.caFile,
      '--token',
      hub.token,
      '--count',
      String(opts.agents),
      '--prefix',
      opts.prefix,
      '--concurrency',
      '64',
      '--watch-stdin',
      '--control-stdin',
      '--jobs',
      '--job-delay-ms',
      String(opts.jobDelayMs),
    ],
    { cwd: ROOT, env: childEnv() },
  );
  sim.onLine((line) => {
    const m = /^job (\S+) (\S+) (\d+(?:\.\d+)?)$/.exec(line);
    if (!m) return;
    const job = { node: m[2]!, seenAt: Number(m[3]) };
    seen.set(m[1]!, job);
    waiters.get(m[1]!)?.(job);
    waiters.delete(m[1]!);
  });
  const stop = async (): Promise<void> => {
    await sim.stop(5_000);
    await hub.child.stop(5_000);
    await rm(work, { recursive: true, force: true });
  };
  try {
    await sim.waitForLine(/^enrolled \d+/, 120_000 + opts.agents * 100);
    phasesMs.enrollMs = Date.now() - since;
    since = Date.now();
    await sim.waitForLine(new RegExp(`^simulated ${opts.agents} connected$`), 60_000 + opts.agents * 60);
    phasesMs.connectAllMs = Date.now() - since;
  } catch (err) {
    await stop();
    throw err;
  }
  const width = String(Math.max(0, opts.agents - 1)).length;
  const nodes = Array.from({ length: opts.agents }, (_, i) => `${opts.prefix}-${String(i).padStart(width, '0')}`);
  const http = new HubHttp(hub.url, hub.caPem, hub.token, 16);
  return {
    hub,
    sim,
    http,
    nodes,
    phasesMs,
    seen(jobId, timeoutMs = 30_000) {
      const known = seen.get(jobId);
      if (known) return Promise.resolve(known);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(jobId);
          reject(new Error(`no simulated agent saw job ${jobId} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.set(jobId, (j) => {
          clearTimeout(timer);
          resolve(j);
        });
      });
    },
    async setJobDelay(ms) {
      const ack = sim.waitForLine(new RegExp(`^job-delay ${ms}$`), 5_000);
      sim.proc.stdin!.write(`job-delay ${ms}\n`);
      await ack;
    },
    async stop() {
      http.close();
      await stop();
    },
  };
}

/** A one-service Compose file (what the dispatch and rollout benches deploy). */
export function oneServiceCompose(tag: string): string {
  return ['services:', '  app:', '    image: registry.example/app:1', "    command: ['serve']", '    labels:', `      bench.tag: "${tag}"`, ''].join('\n');
}
