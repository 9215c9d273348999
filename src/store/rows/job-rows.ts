/**
 * The jobs tables' rows as both engines return them (SQLite's INTEGER and PostgreSQL's BIGINT
 * both arrive as numbers), the records they map to, and a job's column values in the order the
 * stores' INSERT statements list the columns.
 */
import type { JobResult, JobStep } from '../../protocol/jobs.ts';
import { type JobRecord, MAX_JOB_LOG_LINE_BYTES } from '../job-store.ts';

export interface JobRow {
  id: string;
  kind: JobRecord['kind'];
  node: string;
  stack: string;
  revision: number | null;
  idempotency_key: string;
  state: JobRecord['state'];
  request: string;
  secrets: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  started_at: number | null;
  finished_at: number | null;
  result: string | null;
  error_code: string | null;
  error: string | null;
  attempts: number;
  delivered_at: number | null;
  delivery_error: string | null;
  logs_dropped: number;
  intent: string | null;
  held: number;
  sign_by: number | null;
}

export function jobFrom(row: JobRow): JobRecord {
  return {
    id: row.id,
    kind: row.kind,
    node: row.node,
    stack: row.stack,
    revision: row.revision,
    idempotencyKey: row.idempotency_key,
    state: row.state,
    request: row.request,
    secrets: row.secrets,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    result: row.result === null ? null : (JSON.parse(row.result) as JobResult),
    errorCode: row.error_code,
    error: row.error,
    attempts: row.attempts,
    deliveredAt: row.delivered_at,
    deliveryError: row.delivery_error,
    logsDropped: row.logs_dropped,
    intent: row.intent,
    // An INTEGER 0/1 on both engines (the migration's INTEGER became BIGINT, not BOOLEAN).
    held: row.held === 1,
    signBy: row.sign_by,
  };
}

/** Cuts a line to MAX_JOB_LOG_LINE_BYTES of UTF-8 without splitting a character. */
export function boundLogLine(line: string): string {
  if (Buffer.byteLength(line) <= MAX_JOB_LOG_LINE_BYTES) return line;
  return Buffer.from(line)
    .subarray(0, MAX_JOB_LOG_LINE_BYTES)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

/** The result column's text for a job's (or a finish's) result. */
export const resultValue = (result: JobResult | null): string | null => (result === null ? null : JSON.stringify(result));

/** jobs' columns, in the INSERT's order: id, kind, node, stack, revision, idempotency_key, state, request, secrets,
 * created_by, created_at, expires_at, started_at, finished_at, result, error_code, error, attempts, delivered_at,
 * delivery_error, logs_dropped, intent, held, sign_by. */
export const jobValues = (job: JobRecord): unknown[] => [
  job.id,
  job.kind,
  job.node,
  job.stack,
  job.revision,
  job.idempotencyKey,
  job.state,
  job.request,
  job.secrets,
  job.createdBy,
  job.createdAt,
  job.expiresAt,
  job.startedAt,
  job.finishedAt,
  resultValue(job.result),
  job.errorCode,
  job.error,
  job.attempts,
  job.deliveredAt,
  job.deliveryError,
  job.logsDropped,
  job.intent,
  job.held ? 1 : 0,
  job.signBy,
];

/** A job_steps row as `SELECT name, state, started_at, finished_at` returns it. */
export interface StepRow {
  name: string;
  state: JobStep['state'];
  started_at: number;
  finished_at: number | null;
}

export const stepFrom = (r: StepRow): JobStep => ({ name: r.name, state: r.state, startedAt: r.started_at, finishedAt: r.finished_at });
