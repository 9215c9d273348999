/**
 * JobStore on PostgreSQL (the jobs tables as the SQLite migrations make them, translated).
 * Several hub replicas may share the database, so every check-then-write is one statement
 * (insert-or-keep by idempotency key, compare-and-set state transitions) or one transaction
 * that first locks the job's row (progress: step cap, log numbering).
 */
import type { JobStep } from '../../protocol/jobs.ts';
import { MAX_JOB_LOG_LINES, MAX_JOB_STEPS, type JobFilter, type JobFinish, type JobLogLine, type JobRecord, type JobStore } from '../job-store.ts';
import { boundLogLine, type JobRow, jobFrom, jobValues, resultValue, type StepRow, stepFrom } from '../rows/job-rows.ts';
import type { PgDb, Queryable } from './db.ts';

const COLUMNS = `id, kind, node, stack, revision, idempotency_key, state, request, secrets,
  created_by, created_at, expires_at, started_at, finished_at, result, error_code, error, attempts, delivered_at, delivery_error, logs_dropped,
  intent, held, sign_by`;

const FINISHED = "state IN ('succeeded', 'failed')";

export class PostgresJobStore implements JobStore {
  readonly kind = 'jobs' as const;
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async insertJob(job: JobRecord): Promise<{ inserted: boolean; job: JobRecord }> {
    // One statement: of two replicas filing the same key at once, PostgreSQL makes the second
    // wait for the first to commit and then skip, so there is one row and one `inserted`.
    const { rows } = await this.#db.query<JobRow>(
      `INSERT INTO jobs (${COLUMNS})
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
      ON CONFLICT (idempotency_key) DO NOTHING RETURNING *`,
      jobValues(job),
    );
    if (rows[0]) return { inserted: true, job: jobFrom(rows[0]) };
    const existing = await this.#db.query<JobRow>('SELECT * FROM jobs WHERE idempotency_key = $1', [job.idempotencyKey]);
    // The job holding the key was pruned between the two statements: file this one after all.
    if (!existing.rows[0]) return this.insertJob(job);
    return { inserted: false, job: jobFrom(existing.rows[0]) };
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const { rows } = await this.#db.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return rows[0] ? jobFrom(rows[0]) : null;
  }

  async listJobs(filter: JobFilter): Promise<JobRecord[]> {
    const { rows } = await this.#db.query<JobRow>(
      `SELECT * FROM jobs WHERE ($1::text IS NULL OR node = $1) AND ($2::text IS NULL OR stack = $2)
      ORDER BY seq DESC LIMIT $3`,
      [filter.node ?? null, filter.stack ?? null, filter.limit],
    );
    return rows.map(jobFrom);
  }

  async openJobs(node?: string): Promise<JobRecord[]> {
    const { rows } = await this.#db.query<JobRow>(
      `SELECT * FROM jobs WHERE state IN ('queued', 'running') AND held = 0 AND ($1::text IS NULL OR node = $1)
      ORDER BY seq`,
      [node ?? null],
    );
    return rows.map(jobFrom);
  }

  async attachIntent(id: string, intent: string): Promise<boolean> {
    const { rowCount } = await this.#db.query("UPDATE jobs SET state = 'queued', intent = $1, sign_by = NULL WHERE id = $2 AND state = 'awaiting-signature'", [intent, id]);
    return rowCount === 1;
  }

  async release(id: string): Promise<void> {
    await this.#db.query('UPDATE jobs SET held = 0 WHERE id = $1 AND held = 1', [id]);
  }

  async signingJobs(): Promise<JobRecord[]> {
    const { rows } = await this.#db.query<JobRow>(`SELECT * FROM jobs WHERE state = 'awaiting-signature' OR (held = 1 AND state = 'queued') ORDER BY seq`);
    return rows.map(jobFrom);
  }

  async nextExpiry(): Promise<number | null> {
    const { rows } = await this.#db.query<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM jobs WHERE state = 'queued'");
    return rows[0]?.at ?? null;
  }

  async markDelivered(id: string, at: number): Promise<void> {
    await this.#db.query('UPDATE jobs SET attempts = attempts + 1, delivered_at = $1 WHERE id = $2', [at, id]);
  }

  async setDeliveryError(id: string, error: string | null): Promise<void> {
    await this.#db.query('UPDATE jobs SET delivery_error = $1 WHERE id = $2', [error, id]);
  }

  async markRunning(id: string, at: number): Promise<boolean> {
    // Compare-and-set: of two replicas claiming the job, the row lock lets one see `queued`.
    const { rowCount } = await this.#db.query("UPDATE jobs SET state = 'running', started_at = $1 WHERE id = $2 AND state = 'queued'", [at, id]);
    return rowCount === 1;
  }

  async finishJob(id: string, finish: JobFinish): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      `UPDATE jobs SET state = $1, result = $2, error_code = $3, error = $4, finished_at = $5,
        started_at = COALESCE(started_at, $5), delivery_error = NULL
      WHERE id = $6 AND state IN ('awaiting-signature', 'queued', 'running')`,
      [finish.state, resultValue(finish.result), finish.errorCode, finish.error, finish.at, id],
    );
    return rowCount === 1;
  }

  async recordProgress(id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]): Promise<void> {
    if (steps.length === 0 && logs.length === 0) return;
    await this.#db.tx(async (q) => {
      // The job's row lock orders two replicas' reports: the step cap and log numbering are
      // read and written by one of them at a time. (No job: the foreign keys refuse the rows.)
      await q.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [id]);
      await recordSteps(q, id, steps);
      await recordLogs(q, id, logs);
    });
  }

  async pruneFinished(rule: { keepFinished: number; finishedBefore: number; settledBefore: number }): Promise<number> {
    return this.#db.tx(async (q) => {
      // The newest `keepFinished` finished jobs: everything finished before the last of them is beyond the count.
      const edge = await q.query<{ at: number; seq: number }>(`SELECT finished_at AS at, seq FROM jobs WHERE ${FINISHED} ORDER BY finished_at DESC, seq DESC LIMIT 1 OFFSET $1`, [
        Math.max(0, rule.keepFinished - 1),
      ]);
      const doomed = `SELECT id FROM jobs WHERE ${FINISHED} AND finished_at < $1
        AND (finished_at < $2 OR finished_at < $3 OR (finished_at = $3 AND seq < $4))`;
      const args = [rule.settledBefore, rule.finishedBefore, edge.rows[0]?.at ?? -1, edge.rows[0]?.seq ?? -1];
      await q.query(`DELETE FROM job_steps WHERE job_id IN (${doomed})`, args);
      await q.query(`DELETE FROM job_logs WHERE job_id IN (${doomed})`, args);
      return (await q.query(`DELETE FROM jobs WHERE id IN (${doomed})`, args)).rowCount;
    });
  }

  async steps(id: string): Promise<JobStep[]> {
    // SQLite breaks ties by rowid (insertion order); PostgreSQL rows have no stable order of
    // their own, so two steps starting in the same millisecond come by name.
    const { rows } = await this.#db.query<StepRow>('SELECT name, state, started_at, finished_at FROM job_steps WHERE job_id = $1 ORDER BY started_at, name COLLATE "C"', [id]);
    return rows.map(stepFrom);
  }

  async logs(id: string): Promise<JobLogLine[]> {
    const { rows } = await this.#db.query<JobLogLine>('SELECT at, line FROM job_logs WHERE job_id = $1 ORDER BY seq', [id]);
    return rows;
  }
}

/** Upserts steps by name and start; a new step past MAX_JOB_STEPS is left out. */
async function recordSteps(q: Queryable, id: string, steps: readonly JobStep[]): Promise<void> {
  if (steps.length === 0) return;
  const known = await q.query<{ name: string; started_at: number }>('SELECT name, started_at FROM job_steps WHERE job_id = $1', [id]);
  const keys = new Set(known.rows.map((r) => `${r.started_at}\u0000${r.name}`));
  for (const s of steps) {
    const key = `${s.startedAt}\u0000${s.name}`;
    if (!keys.has(key)) {
      if (keys.size >= MAX_JOB_STEPS) continue;
      keys.add(key);
    }
    await q.query(
      `INSERT INTO job_steps (job_id, name, started_at, state, finished_at) VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (job_id, name, started_at) DO UPDATE SET state = excluded.state, finished_at = excluded.finished_at`,
      [id, s.name, s.startedAt, s.state, s.finishedAt],
    );
  }
}

/** Appends log lines not stored yet (by time and text), numbered on; past MAX_JOB_LOG_LINES they are counted. */
async function recordLogs(q: Queryable, id: string, logs: readonly JobLogLine[]): Promise<void> {
  if (logs.length === 0) return;
  const bounded = logs.map((l) => ({ at: l.at, line: boundLogLine(l.line) }));
  const stored = await q.query<{ at: number; line: string }>('SELECT at, line FROM job_logs WHERE job_id = $1 AND (at, line) IN (SELECT * FROM unnest($2::bigint[], $3::text[]))', [
    id,
    bounded.map((l) => l.at),
    bounded.map((l) => l.line),
  ]);
  const seen = new Set(stored.rows.map((r) => `${r.at}\u0000${r.line}`));
  const tally = await q.query<{ n: number; last: number }>('SELECT COUNT(*) AS n, COALESCE(MAX(seq), 0) AS last FROM job_logs WHERE job_id = $1', [id]);
  let count = tally.rows[0]?.n ?? 0;
  let seq = tally.rows[0]?.last ?? 0;
  const fresh: Array<{ seq: number; at: number; line: string }> = [];
  let dropped = 0;
  for (const l of bounded) {
    const key = `${l.at}\u0000${l.line}`;
    if (seen.has(key)) continue;
    if (count >= MAX_JOB_LOG_LINES) {
      dropped++;
      continue;
    }
    seen.add(key);
    fresh.push({ seq: ++seq, at: l.at, line: l.line });
    count++;
  }
  if (fresh.length > 0) {
    await q.query('INSERT INTO job_logs (job_id, seq, at, line) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[])', [
      id,
      fresh.map((l) => l.seq),
      fresh.map((l) => l.at),
      fresh.map((l) => l.line),
    ]);
  }
  if (dropped > 0) await q.query('UPDATE jobs SET logs_dropped = logs_dropped + $1 WHERE id = $2', [dropped, id]);
}
