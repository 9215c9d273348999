/**
 * Interactive calls first, per agent link. A bulk answer (an export, `docker cp`, `save`, a long
 * log) keeps both processes and the engine busy; on a small host it takes every core, and a
 * `docker ps` on the same node then waits behind it at every hop. So while an interactive call
 * is in flight on the link, bulk answers stop being read: their HTTP/2 windows close, the agent
 * stops reading the engine, and the CPU goes to the call. Bulk yields for at most MAX_YIELD_MS
 * at a time and then runs for at least MIN_RUN_MS, so under a steady stream of calls it slows
 * down but never stops.
 *
 * A call counts as interactive from its start until it ends, turns bulk (its answer passed
 * BULK_AFTER_BYTES) or has been open INTERACTIVE_FOR_MS (a `logs -f` or `events` that stays
 * open is not waiting on anyone).
 */
import { EventEmitter } from 'node:events';
import type { FlowGate } from '../../lib/relay.ts';

export const BULK_AFTER_BYTES = 1024 * 1024;
export const INTERACTIVE_FOR_MS = 1_000;
export const MAX_YIELD_MS = 100;
export const MIN_RUN_MS = 25;

export class LinkQos implements FlowGate {
  /** Made when the first bulk answer waits on this link: most links never carry one. */
  #events: EventEmitter | null = null;
  #interactive = 0;
  #yields = 0;
  #yielding = false;
  #yieldTimer: NodeJS.Timeout | null = null;
  #runTimer: NodeJS.Timeout | null = null;

  /** Interactive calls in flight (for tests and stats). */
  get interactive(): number {
    return this.#interactive;
  }

  /** How many times bulk answers have yielded on this link (the gate closed with one waiting). */
  get yields(): number {
    return this.#yields;
  }

  closed(): boolean {
    return this.#yielding;
  }

  onOpen(cb: () => void): () => void {
    if (!this.#events) {
      this.#events = new EventEmitter();
      this.#events.setMaxListeners(0);
    }
    const events = this.#events;
    events.on('open', cb);
    return () => void events.off('open', cb);
  }

  /** An interactive call starts; the returned function ends it (once; later calls do nothing). */
  begin(): () => void {
    this.#interactive++;
    this.#maybeYield();
    let ended = false;
    const timer = setTimeout(() => end(), INTERACTIVE_FOR_MS);
    timer.unref();
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      this.#interactive--;
      if (this.#interactive === 0) this.#open();
    };
    return end;
  }

  /** Stops all timers (the link closed). */
  close(): void {
    this.#clearTimers();
    this.#open();
  }

  #maybeYield(): void {
    // While bulk has its guaranteed run, it keeps it; the run's end looks again.
    if (this.#yielding || this.#runTimer || this.#interactive === 0) return;
    this.#yielding = true;
    if (this.#events && this.#events.listenerCount('open') > 0) this.#yields++;
    this.#yieldTimer = setTimeout(() => {
      this.#yieldTimer = null;
      this.#open();
      this.#runTimer = setTimeout(() => {
        this.#runTimer = null;
        this.#maybeYield();
      }, MIN_RUN_MS);
      this.#runTimer.unref();
    }, MAX_YIELD_MS);
    this.#yieldTimer.unref();
  }

  #open(): void {
    if (this.#yieldTimer) clearTimeout(this.#yieldTimer);
    this.#yieldTimer = null;
    if (!this.#yielding) return;
    this.#yielding = false;
    this.#events?.emit('open');
  }

  #clearTimers(): void {
    if (this.#yieldTimer) clearTimeout(this.#yieldTimer);
    if (this.#runTimer) clearTimeout(this.#runTimer);
    this.#yieldTimer = null;
    this.#runTimer = null;
  }
}
