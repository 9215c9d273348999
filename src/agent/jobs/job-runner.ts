/**
 * The seam between the agent's job machinery (src/agent/jobs/: ledger, delivery, recovery) and
 * what a job does (src/agent/stacks/: the applier). The job side owns exactly-once: it records
 * every transition durably and streams it to the hub; the runner only does the work, through
 * the context it is given, and must converge when run again after a crash (`resumed`).
 */
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';

export interface JobContext {
  /** Runs one named step, recording start/finish/state in the ledger and streaming it to the hub. */
  step<T>(name: string, run: () => Promise<T>): Promise<T>;
  /** A log line for the job (never a secret: the runner redacts secret values it knows). */
  log(line: string): void;
  /** Aborted when the agent stops (not when the hub goes away): the job is then resumed on the next start. */
  signal: AbortSignal;
  /** True when this run resumes a job the agent started before a crash or restart. */
  resumed: boolean;
}

export interface StackJobRunner {
  run(job: JobRequest, ctx: JobContext): Promise<JobResult>;
}
