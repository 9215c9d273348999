/**
 * Sends the stored deliveries: each due one is POSTed to its receiver in the receiver's format;
 * a 2xx answer marks it sent, anything else (an error status, a refused connection, a timeout)
 * schedules the next attempt after a backoff that doubles up to a cap, and after the last
 * attempt it is failed. Because every attempt's outcome is stored, a restarted hub picks up
 * exactly the deliveries still pending. Errors are described without the URL (it may hold the
 * receiver's secret).
 *
 * With hub replicas (issue 17) the deliveries are read without being claimed, so the worker
 * sends only while `deliverWhile` says it may: while this replica holds the `alert-deliveries`
 * lease (alerts.ts follows it). Deliveries another replica filed are found by looking every
 * `pollMs`; the others stay idle, and one of them takes over (and sends what is due at once)
 * when the holder dies.
 */
import type { AlertStore, DeliveryRecord, IncidentRecord, ReceiverRecord } from '../../store/alert-store.ts';
import type { Logger } from '../../lib/logger.ts';
import { formatMessage, type MessageEvent } from './alert-formats.ts';
import type { Receivers } from './receivers.ts';

export interface DeliveryTuning {
  /** The first retry's delay; each next one doubles (default 5 s). */
  retryBaseMs: number;
  /** No retry waits longer than this (default 10 min). */
  retryCapMs: number;
  /** Attempts before a delivery is failed (default 10). */
  maxAttempts: number;
  /** Per attempt (default 10 s). */
  timeoutMs: number;
  /** While delivering, how often to look for deliveries filed elsewhere (another replica's incidents; default 2 s). */
  pollMs: number;
}

export const DELIVERY_DEFAULTS: DeliveryTuning = { retryBaseMs: 5_000, retryCapMs: 600_000, maxAttempts: 10, timeoutMs: 10_000, pollMs: 2_000 };

const BATCH = 20;

export interface SendOutcome {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** A short, URL-free description of why a request failed. */
function describe(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (typeof code === 'string') return `network error (${code})`;
  return 'request failed';
}

export class DeliveryWorker {
  readonly #store: AlertStore;
  readonly #receivers: Receivers;
  readonly #log: Logger;
  readonly #tuning: DeliveryTuning;
  readonly #hubUrl: string | null;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  /** Set while this replica may deliver (it holds the lease); aborted when it no longer may. */
  #held: AbortSignal | null = null;
  readonly #closing = new AbortController();

  constructor(opts: { store: AlertStore; receivers: Receivers; log: Logger; tuning?: Partial<DeliveryTuning>; hubUrl?: string | null }) {
    this.#store = opts.store;
    this.#receivers = opts.receivers;
    this.#log = opts.log;
    this.#tuning = { ...DELIVERY_DEFAULTS, ...opts.tuning };
    this.#hubUrl = opts.hubUrl ?? null;
  }

  /** Delivers until `held` aborts (this replica lost the lease) or the worker closes: what is due now,
   * whatever the book pokes for, and what is found every `pollMs`. */
  async deliverWhile(held: AbortSignal): Promise<void> {
    if (this.#closed || held.aborted) return;
    this.#held = held;
    const poll = setInterval(() => this.poke(), this.#tuning.pollMs).unref();
    this.poke();
    await new Promise<void>((resolve) => {
      held.addEventListener('abort', () => resolve(), { once: true });
      this.#closing.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    clearInterval(poll);
    if (this.#held === held) this.#held = null;
    if (this.#timer) clearTimeout(this.#timer);
    // The lease is let go only after this returns: a message being sent now is finished and
    // recorded first, or the next holder would find it still due and send it again.
    await this.#running;
  }

  /** Whether this replica may send now. */
  #delivering(): boolean {
    return !this.#closed && this.#held !== null && !this.#held.aborted;
  }

  /** Looks for due deliveries now (called at start, whenever an incident changes, and every `pollMs`). */
  poke(): void {
    if (!this.#delivering()) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.poke();
      } else void this.#schedule();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  /** Sends one message to a receiver right now, outside the delivery records (the test button). */
  async send(receiver: ReceiverRecord, event: MessageEvent, incident: IncidentRecord): Promise<SendOutcome> {
    const target = this.#receivers.target(receiver);
    const message = formatMessage(receiver.format, event, incident, this.#hubUrl);
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        body: message.body,
        redirect: 'manual',
        headers: { 'user-agent': 'dockfleet-alerts/1', ...message.headers, ...target.headers },
        signal: AbortSignal.timeout(this.#tuning.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      const ok = res.status >= 200 && res.status < 300;
      return { ok, status: res.status, error: ok ? null : `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, status: null, error: describe(err) };
    }
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (!this.#delivering()) return;
      const due = await this.#store.dueDeliveries(Date.now(), BATCH).catch((err: unknown) => {
        this.#log.error({ err }, 'could not read due alert deliveries');
        return [];
      });
      if (due.length === 0) return;
      let broken = false;
      await Promise.all(
        due.map((d) =>
          this.#attempt(d).catch((err: unknown) => {
            broken = true;
            this.#log.error({ err }, 'could not record an alert delivery attempt');
          }),
        ),
      );
      if (broken) return; // tried again on the next poke or timer, not in a tight loop
    }
  }

  async #attempt(d: DeliveryRecord): Promise<void> {
    const [receiver, incident] = await Promise.all([this.#store.getReceiver(d.receiverId), this.#store.getIncident(d.incidentId)]);
    if (!receiver || !incident) return;
    const attempts = d.attempts + 1;
    const outcome: SendOutcome = receiver.enabled ? await this.send(receiver, d.event, incident) : { ok: false, status: null, error: 'receiver disabled' };
    const now = Date.now();
    if (outcome.ok) {
      await this.#store.recordAttempt(d.id, { state: 'sent', attempts, nextAt: null, lastStatus: outcome.status, lastError: null, sentAt: now });
      return;
    }
    const last = !receiver.enabled || attempts >= this.#tuning.maxAttempts;
    const delay = Math.min(this.#tuning.retryBaseMs * 2 ** (attempts - 1), this.#tuning.retryCapMs);
    this.#log.warn({ receiver: receiver.name, incident: incident.id, attempts, error: outcome.error }, last ? 'alert delivery failed for good' : 'alert delivery failed; will retry');
    await this.#store.recordAttempt(d.id, {
      state: last ? 'failed' : 'pending',
      attempts,
      nextAt: last ? null : now + delay,
      lastStatus: outcome.status,
      lastError: outcome.error,
      sentAt: null,
    });
  }

  async #schedule(): Promise<void> {
    if (!this.#delivering()) return;
    const next = await this.#store.nextDeliveryAt().catch(() => Date.now() + this.#tuning.retryBaseMs);
    if (next === null || !this.#delivering()) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.poke(), Math.max(0, next - Date.now())).unref();
  }
}
