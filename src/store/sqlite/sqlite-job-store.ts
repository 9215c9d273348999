/** JobStore on the hub's SQLite database (tables from the jobs migration). */
import type Database from 'better-sqlite3';
import type { JobStep } from '../../protocol/jobs.ts';
import { MAX_JOB_LOG_LINES, MAX_JOB_STEPS, type JobFilter, type JobFinish, type JobLogLine, type JobRecord, type JobStore } from '../job-store.ts';
import { boundLogLine, type JobRow, jobFrom, jobValues, resultValue, type StepRow, stepFrom } from '../rows/job-rows.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

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
        const line = boundLogLine(l.line);
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
      .run(...jobValues(job));
    const row = this.#sql.get('SELECT * FROM jobs WHERE idempotency_key = ?').get(job.idempotencyKey) as JobRow;
    return { inserted: info.changes === 1, job: jobFrom(row) };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = this.#sql.get('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? jobFrom(row) : null;
  }

  async listJobs(filter: JobFilter): Promise<JobRecord[]> {
    const rows = this.#sql
      .get(`SELECT * FROM jobs WHERE (@node IS NULL OR node = @node) AND (@stack IS NULL OR stack = @stack)
      ORDER BY seq DESC LIMIT @limit`)
      .all({ node: filter.node ?? null, stack: filter.stack ?? null, limit: filter.limit }) as JobRow[];
    return rows.map(jobFrom);
  }

  async openJobs(node?: string): Promise<JobRecord[]> {
    const rows = this.#sql
      .get(`SELECT * FROM jobs WHERE state IN ('queued', 'running') AND held = 0 AND (@node IS NULL OR node = @node)
      ORDER BY seq`)
      .all({ node: node ?? null }) as JobRow[];
    return rows.map(jobFrom);
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
    return rows.map(jobFrom);
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
        .run(finish.state, resultValue(finish.result), finish.errorCode, finish.error, finish.at, finish.at, id).changes === 1
    );
  }

  async recordProgress(id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]): Promise<void> {
    this.#record(id, steps, logs);
  }

  async steps(id: string): Promise<JobStep[]> {
    const rows = this.#sql.get('SELECT name, state, started_at, finished_at FROM job_steps WHERE job_id = ? ORDER BY started_at, rowid').all(id) as StepRow[];
    return rows.map(stepFrom);
  }

  async logs(id: string): Promise<JobLogLine[]> {
    return this.#sql.get('SELECT at, line FROM job_logs WHERE job_id = ? ORDER BY seq').all(id) as JobLogLine[];
  }
}
translateStorageFailures(SqliteJobStore);
