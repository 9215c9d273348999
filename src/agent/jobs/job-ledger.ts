/**
 * The agent's durable record of the jobs it was given: the other half of exactly-once (the
 * hub delivers at least once). One file per job in STATE/jobs/, replaced whole and durably
 * (temp, fsync, rename, fsync dir) BEFORE the agent acts on each transition: received (the
 * request without its secrets, which are sealed: secret-seal.ts), started, each step, finished
 * with its result. Log lines ride along with the next write, or within LOG_FLUSH_MS.
 *
 * Bounded: the last KEEP_FINISHED finished jobs are kept, and any finished job whose delivery
 * could still come (not expired) up to HARD_CAP_FINISHED; each job keeps its last LOG_LINES
 * log lines and MAX_STEPS steps.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { jobRequest, jobResult, jobStep, type JobRequest, type JobResult, type JobStep } from '../../protocol/jobs.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import { TEMP_SUFFIX, writeFileDurably } from '../../lib/write-file-durably.ts';
import { sealedSecrets, type SealedSecrets } from './secret-seal.ts';

export const LEDGER_DIR = 'jobs';
export const LEDGER_LIMITS = { keepFinished: 500, hardCapFinished: 2_000, logLines: 500, steps: 200 } as const;
const LOG_FLUSH_MS = 250;

const ledgerRecord = z.strictObject({
  v: z.literal(1),
  request: jobRequest.omit({ secrets: true }),
  /** The secret part, sealed; dropped once the job is finished. */
  sealed: sealedSecrets.nullable(),
  state: z.enum(['received', 'started', 'finished']),
  receivedAt: z.number(),
  startedAt: z.number().nullable(),
  /** How many times a run began (more than one: resumed after a crash or restart). */
  runs: z.number().int().nonnegative(),
  steps: z.array(jobStep),
  logs: z.array(z.strictObject({ at: z.number(), line: z.string() })),
  logsDropped: z.number().int().nonnegative(),
  result: jobResult.nullable(),
});
export type LedgerRecord = z.infer<typeof ledgerRecord>;

export class JobLedger {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #records = new Map<string, LedgerRecord>();
  readonly #writes = new Map<string, Promise<void>>();
  readonly #flushTimers = new Map<string, NodeJS.Timeout>();

  private constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
  }

  /** Opens (creating) STATE/jobs and reads every record; a damaged one is moved aside and named in the log. */
  static async open(stateDir: string, log: Logger): Promise<JobLedger> {
    const ledger = new JobLedger(join(stateDir, LEDGER_DIR), log);
    await mkdir(ledger.#dir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(ledger.#dir)) {
      const path = join(ledger.#dir, name);
      if (name.endsWith(TEMP_SUFFIX)) await rm(path, { force: true });
      else if (name.endsWith('.json')) await ledger.#load(path, name);
    }
    await ledger.#prune();
    return ledger;
  }

  async #load(path: string, name: string): Promise<void> {
    const parsed = parseJsonLine(await readFile(path, 'utf8'));
    const record = parsed.ok ? ledgerRecord.safeParse(parsed.value) : null;
    if (record?.success && `${record.data.request.id}.json` === name) {
      this.#records.set(record.data.request.id, record.data);
      return;
    }
    await rename(path, `${path}.damaged`);
    this.#log.error({ file: `${path}.damaged` }, 'job ledger record damaged; moved aside (its job is unknown to this agent now)');
  }

  get(id: string): Readonly<LedgerRecord> | null {
    return this.#records.get(id) ?? null;
  }

  /** Jobs received or started and not finished, oldest first. */
  unfinished(): Array<Readonly<LedgerRecord>> {
    return [...this.#records.values()].filter((r) => r.state !== 'finished').sort((a, b) => a.receivedAt - b.receivedAt);
  }

  async receive(request: JobRequest, sealed: SealedSecrets, now = Date.now()): Promise<void> {
    const { secrets: _secrets, ...plain } = request;
    this.#records.set(request.id, {
      v: 1,
      request: plain,
      sealed,
      state: 'received',
      receivedAt: now,
      startedAt: null,
      runs: 0,
      steps: [],
      logs: [],
      logsDropped: 0,
      result: null,
    });
    await this.#persist(request.id);
  }

  async start(id: string, now = Date.now()): Promise<void> {
    const record = this.#require(id);
    record.state = 'started';
    record.startedAt ??= now;
    record.runs++;
    await this.#persist(id);
  }

  /** Records a step's new state (a step is known by its index in the job). Returns that index. */
  async step(id: string, step: JobStep, index?: number): Promise<number> {
    const record = this.#require(id);
    let at = index ?? record.steps.length;
    if (index === undefined) {
      record.steps.push({ ...step });
      if (record.steps.length > LEDGER_LIMITS.steps) record.steps.shift();
      at = record.steps.length - 1;
    } else if (record.steps[index]?.startedAt === step.startedAt) {
      record.steps[index] = { ...step };
    }
    await this.#persist(id);
    return at;
  }

  /** Keeps a log line; written with the next transition or within LOG_FLUSH_MS. */
  log(id: string, at: number, line: string): void {
    const record = this.#require(id);
    record.logs.push({ at, line });
    if (record.logs.length > LEDGER_LIMITS.logLines) {
      record.logs.shift();
      record.logsDropped++;
    }
    if (!this.#flushTimers.has(id)) {
      this.#flushTimers.set(
        id,
        setTimeout(() => void this.#persist(id).catch((err: unknown) => this.#log.warn({ err, job: id }, 'job log lines not written')), LOG_FLUSH_MS),
      );
    }
  }

  async finish(id: string, result: JobResult): Promise<void> {
    const record = this.#require(id);
    record.state = 'finished';
    record.result = result;
    record.sealed = null;
    await this.#persist(id);
    await this.#prune();
  }

  #require(id: string): LedgerRecord {
    const record = this.#records.get(id);
    if (!record) throw new Error(`job ${id} is not in the ledger`);
    return record;
  }

  /** Writes the record as it is when its turn comes; writes of one record never overlap. */
  #persist(id: string): Promise<void> {
    const timer = this.#flushTimers.get(id);
    if (timer) clearTimeout(timer);
    this.#flushTimers.delete(id);
    const previous = this.#writes.get(id) ?? Promise.resolve();
    const write = previous
      .catch(() => {})
      .then(async () => {
        const record = this.#records.get(id);
        if (record) await writeFileDurably(join(this.#dir, `${id}.json`), `${JSON.stringify(record)}\n`);
      });
    this.#writes.set(id, write);
    void write
      .finally(() => {
        if (this.#writes.get(id) === write) this.#writes.delete(id);
      })
      .catch(() => {});
    return write;
  }

  async #prune(now = Date.now()): Promise<void> {
    const finished = [...this.#records.values()].filter((r) => r.state === 'finished').sort((a, b) => (a.result?.finishedAt ?? 0) - (b.result?.finishedAt ?? 0));
    let count = finished.length;
    for (const record of finished) {
      if (count <= LEDGER_LIMITS.keepFinished) break;
      // A job whose delivery may still come is kept (a pruned one would run again), up to the hard cap.
      if (record.request.expiresAt > now && count <= LEDGER_LIMITS.hardCapFinished) continue;
      const id = record.request.id;
      this.#records.delete(id);
      await this.#writes.get(id)?.catch(() => {});
      await rm(join(this.#dir, `${id}.json`), { force: true });
      count--;
    }
  }
}
