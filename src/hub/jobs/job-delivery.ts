/**
 * One delivery of one job over an agent's link: `POST JOBS_PATH` with the JobRequest, then the
 * agent's NDJSON `jobEvent`s, persisted as they come (one transaction per chunk read). The
 * outcome says whether the job is final; anything else (a lost link, a malformed line, a
 * non-200 answer, an answer that ends early) leaves the job as it is, to be delivered again.
 * A malformed line fails this delivery only: the stream is cancelled, the hub goes on.
 */
import http2 from 'node:http2';
import { jobEvent, JOBS_PATH, type JobEvent, type JobStep } from '../../protocol/jobs.ts';
import type { JobLogLine, JobRecord } from '../../store/job-store.ts';
import { LineTooLongError, NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { JobQueue } from './job-queue.ts';
import { secretRedactor, type Redactor } from './secret-redactor.ts';

/** Longest event line the hub reads (a `done` with an 8,000-character error fits many times). */
const MAX_EVENT_LINE = 64 * 1024;
/** How long the agent may take to answer the delivery's head. */
const HEAD_TIMEOUT_MS = 30_000;

export type DeliveryOutcome =
  | { final: true }
  /** `protocol`: the agent answered, but not as the protocol says (counts against the job). */
  | { final: false; reason: string; protocol: boolean };

export interface DeliveryHooks {
  /** The agent has the job (its first `accepted`). */
  onAccepted?: (jobId: string) => void;
}

export async function deliverJob(link: AgentLink, queue: JobQueue, job: JobRecord, signal: AbortSignal, hooks: DeliveryHooks = {}): Promise<DeliveryOutcome> {
  const request = queue.request(job);
  const redact = secretRedactor(request.secrets);
  await queue.markDelivered(job.id);
  let res;
  try {
    res = await link.request({
      method: 'POST',
      path: JOBS_PATH,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(request)),
      timeoutMs: HEAD_TIMEOUT_MS,
      signal,
    });
  } catch (err) {
    return { final: false, reason: (err as Error).message, protocol: false };
  }
  const stream = res.stream;
  if (res.status !== 200) {
    stream.close(http2.constants.NGHTTP2_CANCEL);
    return { final: false, reason: `node ${job.node} answered the delivery with HTTP ${res.status}`, protocol: true };
  }
  const reader = new EventReader(queue, job.id, redact, hooks);
  const splitter = new NdjsonSplitter(MAX_EVENT_LINE);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const events: JobEvent[] = [];
      for (const line of splitter.push(chunk)) {
        const parsed = parseJsonLine(line);
        const event = parsed.ok ? jobEvent.safeParse(parsed.value) : null;
        if (!event?.success) {
          await reader.flush();
          stream.close(http2.constants.NGHTTP2_CANCEL);
          return { final: false, reason: `node ${job.node} sent a malformed job event`, protocol: true };
        }
        events.push(event.data);
      }
      if (await reader.take(events)) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return { final: true };
      }
    }
  } catch (err) {
    await reader.flush();
    if (err instanceof LineTooLongError) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return { final: false, reason: `node ${job.node} sent a job event line over ${MAX_EVENT_LINE} bytes`, protocol: true };
    }
    return { final: false, reason: `the delivery to node ${job.node} broke off: ${(err as Error).message}`, protocol: false };
  }
  await reader.flush();
  return { final: false, reason: `node ${job.node} ended its answer before the job was final`, protocol: false };
}

/** Applies events in order; steps and log lines are written together, before any transition. */
class EventReader {
  readonly #queue: JobQueue;
  readonly #id: string;
  readonly #redact: Redactor;
  readonly #hooks: DeliveryHooks;
  #steps: JobStep[] = [];
  #logs: JobLogLine[] = [];

  constructor(queue: JobQueue, id: string, redact: Redactor, hooks: DeliveryHooks) {
    this.#queue = queue;
    this.#id = id;
    this.#redact = redact;
    this.#hooks = hooks;
  }

  /** Returns true when the job became (or already was) final. */
  async take(events: JobEvent[]): Promise<boolean> {
    for (const e of events) {
      if (e.t === 'step') this.#steps.push({ ...e.step, name: this.#redact(e.step.name) });
      else if (e.t === 'log') this.#logs.push({ at: e.at, line: this.#redact(e.line) });
      else if (e.t === 'accepted') {
        await this.flush();
        await this.#queue.markRunning(this.#id);
        await this.#queue.setDeliveryError(this.#id, null);
        this.#hooks.onAccepted?.(this.#id);
      } else if (e.t === 'done') {
        await this.flush();
        const result = { ...e.result, error: e.result.error === null ? null : this.#redact(e.result.error) };
        await this.#queue.finish(this.#id, { result });
        return true;
      } else {
        await this.flush();
        await this.#queue.finish(this.#id, { errorCode: e.code, error: this.#redact(`refused by the node: ${e.message}`) });
        return true;
      }
    }
    await this.flush();
    return false;
  }

  async flush(): Promise<void> {
    if (this.#steps.length === 0 && this.#logs.length === 0) return;
    const steps = this.#steps;
    const logs = this.#logs;
    this.#steps = [];
    this.#logs = [];
    await this.#queue.recordProgress(this.#id, steps, logs);
  }
}
