/** Slows password guessing: after `maxFailures` failed sign-ins for one account or from one
 * address within `windowMs`, further attempts are refused until the window has passed. */
export class LoginLimiter {
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #failures = new Map<string, number[]>();

  constructor(maxFailures = 5, windowMs = 5 * 60_000) {
    this.#maxFailures = maxFailures;
    this.#windowMs = windowMs;
  }

  /** Milliseconds to wait before trying again, or 0 when attempts are allowed. */
  retryAfter(keys: string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const recent = this.#recent(key, now);
      if (recent.length >= this.#maxFailures) wait = Math.max(wait, recent[recent.length - this.#maxFailures]! + this.#windowMs - now);
    }
    return wait;
  }

  fail(keys: string[], now = Date.now()): void {
    for (const key of keys) this.#failures.set(key, [...this.#recent(key, now), now]);
    if (this.#failures.size > 50_000) {
      for (const [key, times] of this.#failures) if (times.at(-1)! < now - this.#windowMs) this.#failures.delete(key);
    }
  }

  succeed(keys: string[]): void {
    for (const key of keys) this.#failures.delete(key);
  }

  #recent(key: string, now: number): number[] {
    return (this.#failures.get(key) ?? []).filter((t) => t > now - this.#windowMs);
  }
}
