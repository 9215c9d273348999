/**
 * The agent's jobs at start: open the ledger in the state dir, resume every job it shows
 * accepted and unfinished (before any delivery is served, so the host is never left
 * half-deployed waiting for the hub), and make the JOBS_PATH handler.
 */
import type { Logger } from '../../lib/logger.ts';
import type { HostAuditLog } from '../audit/host-audit.ts';
import type { IntentGuard } from '../intent/intent-guard.ts';
import { AgentJobs } from './agent-jobs.ts';
import { JobLedger } from './job-ledger.ts';
import type { StackJobRunner } from './job-runner.ts';
import { createJobsHandler } from './jobs-handler.ts';
import { SecretSeal, type StateKeySource } from './secret-seal.ts';

export interface AgentJobsStarted {
  jobs: AgentJobs;
  handler: ReturnType<typeof createJobsHandler>;
  /** Waits (at most `ms`) for running jobs to stop after the agent's signal. */
  settle(ms: number): Promise<void>;
}

export async function recoverJobs(opts: {
  stateDir: string;
  node: string;
  identity: StateKeySource;
  runner: StackJobRunner;
  log: Logger;
  signal: AbortSignal;
  audit?: HostAuditLog;
  /** Signed intent on this host (jobs-handler.ts checks each new job against it). */
  intent?: IntentGuard;
}): Promise<AgentJobsStarted> {
  const ledger = await JobLedger.open(opts.stateDir, opts.log);
  const jobs = new AgentJobs({ node: opts.node, ledger, seal: new SecretSeal(opts.identity), runner: opts.runner, log: opts.log, signal: opts.signal, ...(opts.audit ? { audit: opts.audit } : {}) });
  const resumed = jobs.recover();
  if (resumed > 0) opts.log.info({ resumed }, 'resuming jobs interrupted by the last stop');
  return {
    jobs,
    handler: createJobsHandler(jobs, opts.log, opts.intent ?? null),
    async settle(ms) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([jobs.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
    },
  };
}
