/**
 * One-time codes that carry a hub sign-in to an app host: the hub's hand-off page gets one for
 * HOST and a return path, the browser brings it to HOST's callback, the edge takes it (once) and
 * makes the edge session. Kept in memory by their hash only, for at most CODE_TTL_MS; a code is
 * gone after its first use whether that use succeeds or not. A hub restart forgets them, which
 * costs a browser one more trip through the hand-off page.
 */
import { createHash, randomBytes } from 'node:crypto';

export const CODE_TTL_MS = 30_000;
/** Codes in flight at once; the oldest is dropped beyond this (each is seconds-lived). */
const MAX_CODES = 10_000;
export const CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface HandOff {
  /** The app host (lowercase, no port) the code is for. */
  host: string;
  /** Where on that host the browser goes after the callback (a path, validated when issued). */
  returnPath: string;
  /** The hub session the code was asked from (its hash), and its user. */
  session: string;
  userId: string;
  expiresAt: number;
}

function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

export class HandOffCodes {
  readonly #codes = new Map<string, HandOff>();
  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(opts: { now?: () => number; ttlMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#ttlMs = opts.ttlMs ?? CODE_TTL_MS;
  }

  /** A new code for this hand-off (the caller sends it to the browser only). */
  issue(handOff: Omit<HandOff, 'expiresAt'>): { code: string; expiresAt: number } {
    this.#prune();
    const code = randomBytes(32).toString('base64url');
    const expiresAt = this.#now() + this.#ttlMs;
    this.#codes.set(hashCode(code), { ...handOff, expiresAt });
    return { code, expiresAt };
  }

  /** The hand-off a code was issued for, once; null when it is unknown, used or late. */
  take(code: string): HandOff | null {
    if (!CODE_PATTERN.test(code)) return null;
    const key = hashCode(code);
    const handOff = this.#codes.get(key);
    if (!handOff) return null;
    this.#codes.delete(key);
    return handOff.expiresAt > this.#now() ? handOff : null;
  }

  get size(): number {
    return this.#codes.size;
  }

  #prune(): void {
    const now = this.#now();
    // Insertion order is expiry order (one TTL for all), so the expired ones are at the front.
    for (const [key, h] of this.#codes) {
      if (h.expiresAt > now && this.#codes.size < MAX_CODES) break;
      this.#codes.delete(key);
    }
  }
}
