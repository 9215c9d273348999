/**
 * Liveness judged fairly: a timer that runs every `periodMs` and declares a peer dead after a
 * silence must not blame the peer for a pause of its own process. When the timer fires late
 * (the event loop was busy: a reconnect storm, a long GC), the peer's pings may be sitting unread
 * in the socket, and timers run before the loop reads them. Such a tick only looks; the next,
 * after the loop has read its backlog once, judges, late or not (a process that is always
 * late still finds its dead peers). Seen: a hub restarted under 10,000 agents dropped
 * hundreds of live links as "silent" while its own loop, and the agents', lagged.
 */
export class OwnStall {
  readonly #periodMs: number;
  #last: number;
  #skipped = false;

  constructor(periodMs: number, now = Date.now()) {
    this.#periodMs = periodMs;
    this.#last = now;
  }

  /** Call on each tick: true when this tick may judge (on time, or the one after a late one). */
  onTime(now = Date.now()): boolean {
    const late = now - this.#last > 2 * this.#periodMs;
    this.#last = now;
    this.#skipped = late && !this.#skipped;
    return !this.#skipped;
  }
}
