/**
 * The durable half of the job queue (hub/jobs/): jobs, their steps and log lines. Filled in by
 * each database folder (sqlite/sqlite-job-store.ts). Methods reject with `storage_full` when
 * the storage cannot take a write. Every state transition is one transaction, and each one
 * names the states it may leave, so a late or repeated event cannot move a final job.
 */
import type { JobKind, JobResult, JobState, JobStep } from '../protocol/jobs.ts';

export interface JobRecord {
  id: string;
  kind: JobKind;
  node: string;
  stack: string;
  /** The target revision (deploy, rollback), or null (remove). */
  revision: number | null;
  idempotencyKey: string;
  state: JobState;
  /** The job's request as JSON, without its secrets (`{ target }`). */
  request: string;
  /** The secret part, sealed by the hub's secret box (never plaintext). */
  secrets: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  result: JobResult | null;
  errorCode: string | null;
  error: string | null;
  attempts: number;
  deliveredAt: number | null;
  deliveryError: string | null;
  logsDropped: number;
  /** The operator's signed intent (wire form) the host will check, or null (unsigned job). */
  intent: string | null;
  /** A signed rollout's job that the rollout has not reached yet: never delivered while true. */
  held: boolean;
  /** When an `awaiting-signature` job fails for want of its signature, or null. */
  signBy: number | null;
}

export interface JobLogLine {
  at: number;
  line: string;
}

export interface JobFinish {
  state: 'succeeded' | 'failed';
  result: JobResult | null;
  errorCode: string | null;
  error: string | null;
  at: number;
}

export interface JobFilter {
  node?: string | undefined;
  stack?: string | undefined;
  limit: number;
}

/** At most this many log lines per job; later ones are counted, not kept. */
export const MAX_JOB_LOG_LINES = 2_000;
/** At most this many bytes per log line (longer lines are cut). */
export const MAX_JOB_LOG_LINE_BYTES = 4_096;
/** At most this many steps per job. */
export const MAX_JOB_STEPS = 500;

export interface JobStore {
  readonly kind: 'jobs';
  /** Inserts the job unless its idempotency key exists; returns the stored job either way. */
  insertJob(job: JobRecord): Promise<{ inserted: boolean; job: JobRecord }>;
  getJob(id: string): Promise<JobRecord | null>;
  /** Newest first. */
  listJobs(filter: JobFilter): Promise<JobRecord[]>;
  /** Queued and running jobs that are not held, oldest first (of one node, or of all). */
  openJobs(node?: string): Promise<JobRecord[]>;
  /** awaiting-signature → queued with its intent; false when the job was not awaiting one. */
  attachIntent(id: string, intent: string): Promise<boolean>;
  /** The rollout reached the job: it may be delivered (once signed). */
  release(id: string): Promise<void>;
  /** Jobs awaiting a signature or held by their rollout, oldest first. */
  signingJobs(): Promise<JobRecord[]>;
  /** The soonest expiry among queued jobs, or null. */
  nextExpiry(): Promise<number | null>;
  /** A delivery is under way: counts it. */
  markDelivered(id: string, at: number): Promise<void>;
  /** Why the last delivery did not reach a final answer (null clears it). */
  setDeliveryError(id: string, error: string | null): Promise<void>;
  /** queued → running; false when the job was not queued. */
  markRunning(id: string, at: number): Promise<boolean>;
  /** awaiting-signature|queued|running → succeeded|failed; false when it was final already. */
  finishJob(id: string, finish: JobFinish): Promise<boolean>;
  /** Steps (upserted by name and start) and log lines (bounded), in one transaction. */
  recordProgress(id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]): Promise<void>;
  /**
   * Deletes finished jobs (with their steps and log lines) that finished before `settledBefore`
   * and either before `finishedBefore` or outside the newest `keepFinished` finished jobs.
   * Open jobs are never deleted. Returns how many went.
   */
  pruneFinished(rule: { keepFinished: number; finishedBefore: number; settledBefore: number }): Promise<number>;
  steps(id: string): Promise<JobStep[]>;
  logs(id: string): Promise<JobLogLine[]>;
}
