/** Slows password guessing: after too many failed sign-ins for one account (`account:` keys)
 * or from one address (`ip:` keys, a looser limit so one person's typos on a shared address
 * do not lock out everyone behind it) within `windowMs`, attempts wait out the window. */
export class LoginLimiter {
  readonly #perAccount: number;
  readonly #perAddress: number;
  readonly #windowMs: number;
  readonly #failures = new Map<string, number[]>();

  constructor(opts: { perAccount?: number; perAddress?: number; windowMs?: number } = {}) {
    this.#perAccount = opts.perAccount ?? 5;
    this.#perAddress = opts.perAddress ?? 20;
    this.#windowMs = opts.windowMs ?? 5 * 60_000;
  }

  /** Milliseconds to wait before trying again, or 0 when attempts are allowed. */
  retryAfter(keys: string[], now = Date.now()): number {
    let wait = 0;
    for (const key of keys) {
      const limit = key.startsWith('ip:') ? this.#perAddress : this.#perAccount;
      const recent = this.#recent(key, now);
      if (recent.length >= limit) wait = Math.max(wait, recent[recent.length - limit]! + this.#windowMs - now);
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
