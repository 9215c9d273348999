/**
 * Refuses a node that reconnects in a tight loop. An agent backing off as it should (100 ms
 * doubling to 10 s) makes at most about eight attempts in ten seconds; past `limit` attempts
 * in `windowMs` the node is told to wait out the rest of the window.
 */
export class ReconnectLimiter {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #attempts = new Map<string, number[]>();

  constructor(limit = 12, windowMs = 10_000) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Records an attempt; returns 0 when allowed, else the milliseconds to wait. */
  attempt(key: string, now = Date.now()): number {
    const since = now - this.#windowMs;
    const recent = (this.#attempts.get(key) ?? []).filter((t) => t > since);
    recent.push(now);
    this.#attempts.set(key, recent);
    if (this.#attempts.size > 10_000) this.#prune(since);
    if (recent.length <= this.#limit) return 0;
    return Math.max(1, recent[recent.length - this.#limit - 1]! + this.#windowMs - now);
  }

  #prune(since: number): void {
    for (const [key, times] of this.#attempts) {
      if (times[times.length - 1]! <= since) this.#attempts.delete(key);
    }
  }
}
