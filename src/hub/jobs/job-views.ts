/** What the hub shows of a job: never its secrets. JobView for lists and events, JobDetail
 * with steps, timings and log lines; `toApi*` turn times into ISO strings for REST and CLI. */
import type { JobKind, JobResult, JobState, JobStep } from '../../protocol/jobs.ts';
import type { JobLogLine, JobRecord } from '../../store/job-store.ts';

export interface JobView {
  id: string;
  kind: JobKind;
  node: string;
  stack: string;
  state: JobState;
  createdAt: number;
  finishedAt: number | null;
  /** The revision the stack is on after the job when it is final, else the target revision. */
  revision: number | null;
  /** Whether the agent put the previous revision back (a failed deploy). */
  rolledBack: boolean;
  /** Why it failed, for people (null while it has not failed). */
  error: string | null;
  /** The failure's code (`job_expired`, an agent's refusal code, …), or null. */
  errorCode: string | null;
}

export interface JobDetail extends JobView {
  createdBy: string;
  startedAt: number | null;
  expiresAt: number;
  attempts: number;
  /** Why the last delivery to the agent did not reach an answer (while it is retried). */
  deliveryError: string | null;
  result: JobResult | null;
  steps: JobStep[];
  logs: JobLogLine[];
  logsDropped: number;
}

export function jobView(job: JobRecord): JobView {
  return {
    id: job.id,
    kind: job.kind,
    node: job.node,
    stack: job.stack,
    state: job.state,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt,
    revision: job.result?.revision ?? job.revision,
    rolledBack: job.result?.rolledBack ?? false,
    error: job.error,
    errorCode: job.errorCode,
  };
}

export function jobDetail(job: JobRecord, steps: JobStep[], logs: JobLogLine[]): JobDetail {
  return {
    ...jobView(job),
    createdBy: job.createdBy,
    startedAt: job.startedAt,
    expiresAt: job.expiresAt,
    attempts: job.attempts,
    deliveryError: job.deliveryError,
    result: job.result,
    steps,
    logs,
    logsDropped: job.logsDropped,
  };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The REST list item (CONTRACT.md: `{id, kind, node, stack, state, createdAt, finishedAt}` and more). */
export function apiJob(view: JobView): Record<string, unknown> {
  return { ...view, createdAt: iso(view.createdAt), finishedAt: iso(view.finishedAt) };
}

export function apiJobDetail(detail: JobDetail): Record<string, unknown> {
  return {
    ...apiJob(detail),
    startedAt: iso(detail.startedAt),
    expiresAt: iso(detail.expiresAt),
    steps: detail.steps.map((s) => ({ ...s, startedAt: iso(s.startedAt), finishedAt: iso(s.finishedAt) })),
    logs: detail.logs.map((l) => ({ at: iso(l.at), line: l.line })),
  };
}
