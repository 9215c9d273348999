/**
 * Counts attempts under named keys and says when to wait. An attempt is reserved under all its
 * keys at once, synchronously, when the request arrives, and counts as a failure from that
 * moment: a slow check (scrypt) cannot let many concurrent attempts pass a limit that is only
 * counted afterwards. A success gives its reservation back. Memory is bounded: at most
 * `maxKeys` keys (expired ones go first, then the least recently used) and `MAX_TIMES` times
 * per key.
 */
export interface LimitRule {
  /** Failures allowed within `windowMs` before attempts wait. */
  limit: number;
  windowMs: number;
  /** Past the limit, each further failure doubles the wait after the latest one, from `baseMs`
   * up to `capMs`. Without it, attempts wait until the oldest counted failure leaves the window. */
  backoff?: { baseMs: number; capMs: number };
}

export type Reservation = { ok: true; attempt: Attempt } | { ok: false; retryAfterMs: number };

interface Bucket {
  rule: LimitRule;
  times: number[];
}

const MAX_TIMES = 64;

export class AttemptLimiter<Kind extends string> {
  readonly #rules: Readonly<Record<Kind, LimitRule>>;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(rules: Readonly<Record<Kind, LimitRule>>, opts: { maxKeys?: number } = {}) {
    this.#rules = rules;
    this.#maxKeys = opts.maxKeys ?? 100_000;
  }

  /** Reserves one attempt under every key, or says how long the longest wait among them is. */
  reserve(keys: ReadonlyArray<readonly [Kind, string]>, now = Date.now()): Reservation {
    let wait = 0;
    for (const [kind, id] of keys) wait = Math.max(wait, this.#waitFor(this.#rules[kind], this.#buckets.get(`${kind}:${id}`), now));
    if (wait > 0) return { ok: false, retryAfterMs: wait };
    const names = keys.map(([kind, id]) => `${kind}:${id}`);
    for (const [i, name] of names.entries()) this.#record(name, this.#rules[keys[i]![0]], now);
    return { ok: true, attempt: new Attempt(names, (clear) => this.#giveBack(names, now, clear)) };
  }

  /** The number of keys held (for tests of the bound). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one reservation back; forgets `clear` keys entirely. */
  #giveBack(names: readonly string[], at: number, clear: ReadonlySet<string>): void {
    for (const name of names) {
      if (clear.has(name)) {
        this.#buckets.delete(name);
        continue;
      }
      const times = this.#buckets.get(name)?.times;
      const i = times?.lastIndexOf(at) ?? -1;
      if (i >= 0) times!.splice(i, 1);
    }
  }

  #waitFor(rule: LimitRule, bucket: Bucket | undefined, now: number): number {
    if (!bucket) return 0;
    const recent = bucket.times.filter((t) => t > now - rule.windowMs);
    if (recent.length < rule.limit) return 0;
    if (!rule.backoff) return recent[recent.length - rule.limit]! + rule.windowMs - now;
    const over = recent.length - rule.limit;
    const step = Math.min(rule.backoff.capMs, rule.backoff.baseMs * 2 ** Math.min(over, 30));
    return Math.max(0, recent.at(-1)! + step - now);
  }

  #record(name: string, rule: LimitRule, now: number): void {
    const bucket = this.#buckets.get(name);
    const times = (bucket?.times ?? []).filter((t) => t > now - rule.windowMs);
    times.push(now);
    if (times.length > MAX_TIMES) times.splice(0, times.length - MAX_TIMES);
    // Re-inserted, so the map's order is least recently used first.
    this.#buckets.delete(name);
    this.#buckets.set(name, { rule, times });
    if (this.#buckets.size > this.#maxKeys) this.#evict(now);
  }

  #evict(now: number): void {
    for (const [name, { rule, times }] of this.#buckets) {
      if (times.every((t) => t <= now - rule.windowMs)) this.#buckets.delete(name);
    }
    // Down to 90 %, so a flood of new keys pays for one sweep per many inserts, not per insert.
    for (const name of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxKeys * 0.9) break;
      this.#buckets.delete(name);
    }
  }
}

/** One reserved attempt: a failure unless `succeeded`. */
export class Attempt {
  readonly #names: readonly string[];
  readonly #giveBack: (clear: ReadonlySet<string>) => void;
  #settled = false;

  constructor(names: readonly string[], giveBack: (clear: ReadonlySet<string>) => void) {
    this.#names = names;
    this.#giveBack = giveBack;
  }

  /** The attempt was not a failure: its reservation is given back, and keys whose name starts
   * with one of `clearKinds` (e.g. the address-and-account pair) are forgotten. */
  succeeded(clearKinds: readonly string[] = []): void {
    if (this.#settled) return;
    this.#settled = true;
    const clear = new Set(this.#names.filter((n) => clearKinds.some((kind) => n.startsWith(`${kind}:`))));
    this.#giveBack(clear);
  }
}
