/**
 * The agent's jobs: every delivery of a job ends here, and here it is decided whether the job
 * runs (once), is joined (running now), is answered from the ledger (finished) or refused
 * (another node's, or expired before it started). One job per stack runs at a time on this
 * agent; the next one for that stack waits its turn. Jobs run under the agent's own lifetime,
 * never a delivery's: a hub that goes away mid-job does not stop it. When the agent stops, a
 * running job stays `started` in the ledger and is resumed on the next start (recover()).
 */
import { jobResult, type JobRequest, type JobResult } from '../../protocol/jobs.ts';
import type { ErrorCode } from '../../protocol/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AuditOrigin } from '../audit/audit-origin.ts';
import type { HostAuditLog } from '../audit/host-audit.ts';
import { JobExecution } from './job-execution.ts';
import type { JobLedger, LedgerRecord } from './job-ledger.ts';
import type { StackJobRunner } from './job-runner.ts';
import { SecretRedactor } from './secret-redactor.ts';
import type { SecretSeal } from './secret-seal.ts';
import { StackLocks } from './stack-locks.ts';

export type Delivery =
  | { kind: 'refused'; code: ErrorCode; message: string }
  | { kind: 'finished'; result: JobResult }
  /** `accepted` settles once the ledger holds the job (null), or with why it could not (the job is not run). */
  | { kind: 'live'; execution: JobExecution; accepted: Promise<{ code: ErrorCode; message: string } | null> };

export interface AgentJobsOptions {
  node: string;
  ledger: JobLedger;
  seal: SecretSeal;
  runner: StackJobRunner;
  log: Logger;
  /** The agent's lifetime: aborting it stops running jobs without finishing them (they resume on the next start). */
  signal: AbortSignal;
  /** The host's own audit log: each job started, finished or refused is recorded there. */
  audit?: HostAuditLog;
}

export class AgentJobs {
  readonly #opts: AgentJobsOptions;
  readonly #running = new Map<string, { execution: JobExecution; accepted: Promise<{ code: ErrorCode; message: string } | null>; settled: Promise<void> }>();
  readonly #locks = new StackLocks();

  constructor(opts: AgentJobsOptions) {
    this.#opts = opts;
  }

  /** Resumes every job the ledger shows accepted and unfinished, oldest first; called before deliveries are served.
   * A job whose sealed secrets cannot be opened (the key rotated) waits for the hub's next delivery. */
  recover(): number {
    let resumed = 0;
    for (const record of this.#opts.ledger.unfinished()) {
      const secrets = record.sealed ? this.#opts.seal.open(record.request.id, record.sealed) : null;
      if (!secrets) {
        this.#opts.log.warn({ job: record.request.id }, 'job interrupted; its secrets cannot be opened here, so it waits for the hub to deliver it again');
        continue;
      }
      this.#launch({ ...record.request, secrets }, record);
      resumed++;
    }
    return resumed;
  }

  /** Whether this job is running or in the ledger already (a redelivery: its intent was checked once). */
  knows(id: string): boolean {
    return this.#running.has(id) || this.#opts.ledger.get(id) !== null;
  }

  /** `from`: who the hub says asked (for the host's audit log only). */
  deliver(request: JobRequest, from: AuditOrigin = {}): Delivery {
    const delivery = this.#decide(request, from);
    if (delivery.kind === 'refused') this.#audit(request, from, { result: 'refused', reason: delivery.message });
    return delivery;
  }

  #decide(request: JobRequest, from: AuditOrigin): Delivery {
    const { node, ledger } = this.#opts;
    if (request.node !== node) return { kind: 'refused', code: 'job_misdirected', message: `job ${request.id} is for node ${request.node}; this is ${node}` };
    // The ledger first: a run whose result is recorded is finished, even in the moment before it
    // leaves the running ones (a redelivery then gets the result, not a replay of its steps).
    const record = ledger.get(request.id);
    if (record?.state === 'finished' && record.result) return { kind: 'finished', result: record.result };
    const running = this.#running.get(request.id);
    if (running) return { kind: 'live', execution: running.execution, accepted: running.accepted };
    if (!record && request.expiresAt <= Date.now()) {
      return { kind: 'refused', code: 'job_expired', message: `job ${request.id} expired at ${new Date(request.expiresAt).toISOString()} before it started` };
    }
    // New, or accepted before and waiting (for its secrets, after a restart): run it now.
    const live = this.#launch(request, record, from);
    return { kind: 'live', execution: live.execution, accepted: live.accepted };
  }

  /** Settles when every job running now has stopped (after the agent's signal, they stop unfinished). */
  async idle(): Promise<void> {
    await Promise.all([...this.#running.values()].map((r) => r.settled));
  }

  /** One line in the host's audit log for this job: `job KIND` on its stack, its id as the ref when the hub gave none. */
  #audit(request: JobRequest, from: AuditOrigin, what: { result: 'ok' | 'failed' | 'refused'; reason?: string; started?: boolean }): void {
    this.#opts.audit?.append({
      op: `job ${request.kind}${what.started ? ' started' : ''}`,
      target: request.stack || `volume ${request.volume?.volume ?? ''}`,
      result: what.result,
      ...(what.reason === undefined ? {} : { reason: what.reason }),
      ...from,
      ref: from.ref ?? `job ${request.id}`,
    });
  }

  #launch(request: JobRequest, record: Readonly<LedgerRecord> | null, from: AuditOrigin = {}): { execution: JobExecution; accepted: Promise<{ code: ErrorCode; message: string } | null> } {
    const { ledger, seal, log } = this.#opts;
    const execution = new JobExecution(request, ledger, new SecretRedactor(request.secrets));
    const accepted = record
      ? Promise.resolve(null)
      : ledger.receive(request, seal.seal(request.id, request.secrets)).then(
          () => null,
          (err: unknown) => {
            log.error({ err, job: request.id }, 'job could not be recorded; not run');
            return { code: 'insufficient_storage' as const, message: `the agent could not record job ${request.id} in its state dir` };
          },
        );
    const entry = { execution, accepted, settled: Promise.resolve() };
    this.#running.set(request.id, entry);
    entry.settled = this.#run(execution, accepted, record?.state === 'started', from).finally(() => this.#running.delete(request.id));
    return entry;
  }

  async #run(execution: JobExecution, accepted: Promise<{ message: string } | null>, wasStarted: boolean, from: AuditOrigin): Promise<void> {
    const { ledger, runner, log, signal } = this.#opts;
    const notRecorded = await accepted;
    if (notRecorded !== null) {
      this.#audit(execution.request, from, { result: 'failed', reason: notRecorded.message });
      return execution.abandon();
    }
    const release = await this.#locks.acquire(execution.request.stack);
    try {
      if (signal.aborted) return execution.abandon();
      const startedAt = Date.now();
      await ledger.start(execution.id, startedAt);
      log.info({ job: execution.id, kind: execution.request.kind, stack: execution.request.stack, resumed: wasStarted }, wasStarted ? 'job resumed' : 'job started');
      this.#audit(execution.request, from, { result: 'ok', started: true, ...(wasStarted ? { reason: 'resumed after the agent restarted' } : {}) });
      let result: JobResult;
      try {
        const raw = await runner.run(execution.request, execution.context(signal, wasStarted));
        const parsed = jobResult.safeParse(raw);
        result = parsed.success ? parsed.data : failed(startedAt, 'the stack runner returned a malformed result');
      } catch (err) {
        result = failed(startedAt, (err as Error)?.message ?? String(err));
      }
      // Stopped with the agent: not finished; the next start resumes it.
      if (signal.aborted) return execution.abandon();
      const error = result.error === null ? null : execution.redact(result.error).slice(0, 8_000);
      const final: JobResult = { ...result, error };
      await ledger.finish(execution.id, final);
      log.info({ job: execution.id, state: final.state, revision: final.revision, rolledBack: final.rolledBack }, 'job finished');
      this.#audit(execution.request, from, {
        result: final.state === 'succeeded' ? 'ok' : 'failed',
        reason: final.error ?? `revision ${final.revision}${final.rolledBack ? ', rolled back' : ''}`,
      });
      execution.finish(final);
    } catch (err) {
      log.error({ err, job: execution.id }, 'job ledger write failed; the job stays unfinished and resumes on the next start');
      execution.abandon();
    } finally {
      release();
    }
  }
}

function failed(startedAt: number, error: string): JobResult {
  return { state: 'failed', error, revision: 0, rolledBack: false, startedAt, finishedAt: Date.now() };
}
