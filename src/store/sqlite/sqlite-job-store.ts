/** JobStore on the hub's SQLite database (tables from the jobs migration). */
import type Database from 'better-sqlite3';
import type { JobResult, JobStep } from '../../protocol/jobs.ts';
import { MAX_JOB_LOG_LINES, MAX_JOB_LOG_LINE_BYTES, MAX_JOB_STEPS, type JobFilter, type JobFinish, type JobLogLine, type JobRecord, type JobStore } from '../job-store.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

interface JobRow {
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

function fromRow(row: JobRow): JobRecord {
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
    held: row.held === 1,
    signBy: row.sign_by,
  };
}

/** Cuts a line to MAX_JOB_LOG_LINE_BYTES of UTF-8 without splitting a character. */
function boundLine(line: string): string {
  if (Buffer.byteLength(line) <= MAX_JOB_LOG_LINE_BYTES) return line;
  return Buffer.from(line)
    .subarray(0, MAX_JOB_LOG_LINE_BYTES)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
}

export class SqliteJobStore implements JobStore {
  readonly kind = 'jobs' as const;
  readonly #sql: StatementCache;
  readonly #record: (id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]) => void;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
    this.#record = db.transaction((id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]) => {
      for (const s of steps) {
        const known = this.#sql.get('SELECT 1 FROM job_steps WHERE job_id = ? AND name = ? AND started_at = ?').get(id, s.name, s.startedAt);
        if (!known) {
          const { n } = this.#sql.get('SELECT COUNT(*) AS n FROM job_steps WHERE job_id = ?').get(id) as { n: number };
          if (n >= MAX_JOB_STEPS) continue;
        }
        this.#sql
          .get(`INSERT INTO job_steps (job_id, name, started_at, state, finished_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (job_id, name, started_at) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at`)
          .run(id, s.name, s.startedAt, s.state, s.finishedAt);
      }
      if (logs.length === 0) return;
      const { n, last } = this.#sql.get('SELECT COUNT(*) AS n, COALESCE(MAX(seq), 0) AS last FROM job_logs WHERE job_id = ?').get(id) as { n: number; last: number };
      let count = n;
      let seq = last;
      let dropped = 0;
      for (const l of logs) {
        const line = boundLine(l.line);
        if (this.#sql.get('SELECT 1 FROM job_logs WHERE job_id = ? AND at = ? AND line = ?').get(id, l.at, line)) continue;
        if (count >= MAX_JOB_LOG_LINES) {
          dropped++;
          continue;
        }
        this.#sql.get('INSERT INTO job_logs (job_id, seq, at, line) VALUES (?, ?, ?, ?)').run(id, ++seq, l.at, line);
        count++;
      }
      if (dropped > 0) this.#sql.get('UPDATE jobs SET logs_dropped = logs_dropped + ? WHERE id = ?').run(dropped, id);
    });
  }

  async pruneFinished(rule: { keepFinished: number; finishedBefore: number; settledBefore: number }): Promise<number> {
    return this.#sql.db.transaction(() => {
      // The newest `keepFinished` finished jobs: everything finished before the last of them is beyond the count.
      const edge = this.#sql
        .get(`SELECT finished_at AS at, seq FROM jobs WHERE state IN ('succeeded', 'failed')
        ORDER BY finished_at DESC, seq DESC LIMIT 1 OFFSET ?`)
        .get(Math.max(0, rule.keepFinished - 1)) as { at: number; seq: number } | undefined;
      const doomed = `SELECT id FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < @settled
        AND (finished_at < @before OR finished_at < @edgeAt OR (finished_at = @edgeAt AND seq < @edgeSeq))`;
      const args = { settled: rule.settledBefore, before: rule.finishedBefore, edgeAt: edge?.at ?? -1, edgeSeq: edge?.seq ?? -1 };
      this.#sql.get(`DELETE FROM job_steps WHERE job_id IN (${doomed})`).run(args);
      this.#sql.get(`DELETE FROM job_logs WHERE job_id IN (${doomed})`).run(args);
      return this.#sql.get(`DELETE FROM jobs WHERE id IN (${doomed})`).run(args).changes;
    })();
  }

  async insertJob(job: JobRecord): Promise<{ inserted: boolean; job: JobRecord }> {
    const info = this.#sql
      .get(`INSERT INTO jobs (id, kind, node, stack, revision, idempotency_key, state, request, secrets,
        created_by, created_at, expires_at, started_at, finished_at, result, error_code, error, attempts, delivered_at, delivery_error, logs_dropped,
        intent, held, sign_by)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (idempotency_key) DO NOTHING`)
      .run(
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
        job.result === null ? null : JSON.stringify(job.result),
        job.errorCode,
        job.error,
        job.attempts,
        job.deliveredAt,
        job.deliveryError,
        job.logsDropped,
        job.intent,
        job.held ? 1 : 0,
        job.signBy,
      );
    const row = this.#sql.get('SELECT * FROM jobs WHERE idempotency_key = ?').get(job.idempotencyKey) as JobRow;
    return { inserted: info.changes === 1, job: fromRow(row) };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = this.#sql.get('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? fromRow(row) : null;
  }

  async listJobs(filter: JobFilter): Promise<JobRecord[]> {
    const rows = this.#sql
      .get(`SELECT * FROM jobs WHERE (@node IS NULL OR node = @node) AND (@stack IS NULL OR stack = @stack)
      ORDER BY seq DESC LIMIT @limit`)
      .all({ node: filter.node ?? null, stack: filter.stack ?? null, limit: filter.limit }) as JobRow[];
    return rows.map(fromRow);
  }

  async openJobs(node?: string): Promise<JobRecord[]> {
    const rows = this.#sql
      .get(`SELECT * FROM jobs WHERE state IN ('queued', 'running') AND held = 0 AND (@node IS NULL OR node = @node)
      ORDER BY seq`)
      .all({ node: node ?? null }) as JobRow[];
    return rows.map(fromRow);
  }

  async attachIntent(id: string, intent: string): Promise<boolean> {
    return this.#sql.get("UPDATE jobs SET state = 'queued', intent = ?, sign_by = NULL WHERE id = ? AND state = 'awaiting-signature'").run(intent, id).changes === 1;
  }

  async release(id: string): Promise<void> {
    this.#sql.get('UPDATE jobs SET held = 0 WHERE id = ? AND held = 1').run(id);
  }

  async signingJobs(): Promise<JobRecord[]> {
    const rows = this.#sql
      .get(`SELECT * FROM jobs WHERE state = 'awaiting-signature' OR (held = 1 AND state = 'queued')
      ORDER BY seq`)
      .all() as JobRow[];
    return rows.map(fromRow);
  }

  async nextExpiry(): Promise<number | null> {
    const row = this.#sql.get("SELECT MIN(expires_at) AS at FROM jobs WHERE state = 'queued'").get() as { at: number | null };
    return row.at;
  }

  async markDelivered(id: string, at: number): Promise<void> {
    this.#sql.get('UPDATE jobs SET attempts = attempts + 1, delivered_at = ? WHERE id = ?').run(at, id);
  }

  async setDeliveryError(id: string, error: string | null): Promise<void> {
    this.#sql.get('UPDATE jobs SET delivery_error = ? WHERE id = ?').run(error, id);
  }

  async markRunning(id: string, at: number): Promise<boolean> {
    return this.#sql.get("UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'").run(at, id).changes === 1;
  }

  async finishJob(id: string, finish: JobFinish): Promise<boolean> {
    return (
      this.#sql
        .get(`UPDATE jobs SET state = ?, result = ?, error_code = ?, error = ?, finished_at = ?,
        started_at = COALESCE(started_at, ?), delivery_error = NULL
      WHERE id = ? AND state IN ('awaiting-signature', 'queued', 'running')`)
        .run(finish.state, finish.result === null ? null : JSON.stringify(finish.result), finish.errorCode, finish.error, finish.at, finish.at, id).changes === 1
    );
  }

  async recordProgress(id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]): Promise<void> {
    this.#record(id, steps, logs);
  }

  async steps(id: string): Promise<JobStep[]> {
    const rows = this.#sql.get('SELECT name, state, started_at, finished_at FROM job_steps WHERE job_id = ? ORDER BY started_at, rowid').all(id) as Array<{
      name: string;
      state: JobStep['state'];
      started_at: number;
      finished_at: number | null;
    }>;
    return rows.map((r) => ({ name: r.name, state: r.state, startedAt: r.started_at, finishedAt: r.finished_at }));
  }

  async logs(id: string): Promise<JobLogLine[]> {
    return this.#sql.get('SELECT at, line FROM job_logs WHERE job_id = ? ORDER BY seq').all(id) as JobLogLine[];
  }
}
translateStorageFailures(SqliteJobStore);
