/**
 * One run of one job on this agent: the JobContext the runner gets, and the events it makes,
 * fanned out to every delivery that is listening. The ledger is written before each event goes
 * out, so what the hub hears is never ahead of what the agent would remember after a crash.
 * Deliveries come and go (a hub that goes away does not stop the job); a delivery that joins
 * late gets each step's latest state, then what happens from then on.
 */
import type { JobEvent, JobRequest, JobResult, JobStep } from '../../protocol/jobs.ts';
import type { JobLedger } from './job-ledger.ts';
import type { JobContext } from './job-runner.ts';
import type { SecretRedactor } from './secret-redactor.ts';

/** At most this many log lines go out per run (the hub keeps 2,000 per job); one note says when more were held back. */
export const MAX_STREAMED_LOG_LINES = 2_000;
const MAX_LINE = 4_000;
const MAX_STEP_NAME = 200;

export type JobListener = (event: JobEvent) => void;

export class JobExecution {
  readonly request: JobRequest;
  readonly #ledger: JobLedger;
  readonly #redactor: SecretRedactor;
  readonly #listeners = new Set<JobListener>();
  #done: JobEvent | null = null;
  #streamedLogs = 0;

  constructor(request: JobRequest, ledger: JobLedger, redactor: SecretRedactor) {
    this.request = request;
    this.#ledger = ledger;
    this.#redactor = redactor;
  }

  get id(): string {
    return this.request.id;
  }

  redact(text: string): string {
    return this.#redactor.redact(text);
  }

  /** Listens from now on; returns the way to stop listening. A finished run answers at once. */
  subscribe(listener: JobListener): () => void {
    if (this.#done) {
      listener(this.#done);
      return () => {};
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Each step's latest state, for a delivery that joins a run under way. */
  steps(): JobStep[] {
    return (this.#ledger.get(this.id)?.steps ?? []).map((s) => ({ ...s }));
  }

  context(signal: AbortSignal, resumed: boolean): JobContext {
    return {
      signal,
      resumed,
      step: (name, run) => this.#step(name, run),
      log: (line) => this.#logLine(line),
    };
  }

  /** The run is over: the result is in the ledger; every listener hears `done` and is let go. */
  finish(result: JobResult): void {
    this.#done = { t: 'done', result };
    this.#emit(this.#done);
    this.#listeners.clear();
  }

  /** The run stopped without a result (the agent is stopping): listeners are let go, nothing is final. */
  abandon(): void {
    this.#listeners.clear();
  }

  async #step<T>(name: string, run: () => Promise<T>): Promise<T> {
    const step: JobStep = { name: this.redact(name).slice(0, MAX_STEP_NAME), state: 'running', startedAt: Date.now(), finishedAt: null };
    const index = await this.#ledger.step(this.id, step);
    this.#emit({ t: 'step', step: { ...step } });
    let value: T;
    try {
      value = await run();
    } catch (err) {
      await this.#endStep(step, index, 'failed');
      throw err;
    }
    await this.#endStep(step, index, 'succeeded');
    return value;
  }

  async #endStep(step: JobStep, index: number, state: 'succeeded' | 'failed'): Promise<void> {
    const ended: JobStep = { ...step, state, finishedAt: Date.now() };
    await this.#ledger.step(this.id, ended, index);
    this.#emit({ t: 'step', step: ended });
  }

  #logLine(line: string): void {
    const at = Date.now();
    const text = this.redact(line).slice(0, MAX_LINE);
    this.#ledger.log(this.id, at, text);
    this.#streamedLogs++;
    if (this.#streamedLogs <= MAX_STREAMED_LOG_LINES) this.#emit({ t: 'log', at, line: text });
    else if (this.#streamedLogs === MAX_STREAMED_LOG_LINES + 1) this.#emit({ t: 'log', at, line: `(log lines past ${MAX_STREAMED_LOG_LINES} in this run are not sent)` });
  }

  #emit(event: JobEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}
