/**
 * Slows password and setup-code guessing. Every attempt is counted when it arrives, before the
 * (slow) check, under several keys at once:
 * - the address and account pair: 5 failures per 15 minutes, so one address cannot keep
 *   guessing one account;
 * - the address: 20 per 15 minutes across accounts, against spraying one password at many;
 * - the account, from browsers it does not know: 10 per 15 minutes, then a back-off that starts
 *   at 30 s and doubles per failure up to 15 minutes, against guessing from many addresses;
 * - a known device (one that signed in to this account before, see known-devices.ts): only its
 *   own 5 per 15 minutes. The account's back-off and the address limits do not apply to it, so
 *   guessing by others never locks the owner out of a browser they have used before.
 * Setup codes: 10 guesses per address per 15 minutes.
 * Addresses are compared as IPv4 addresses or IPv6 /64 prefixes (one host often holds a /64).
 */
import { isIPv6 } from 'node:net';
import { AttemptLimiter, type LimitRule, type Reservation } from './attempt-limiter.ts';

const WINDOW_MS = 15 * 60_000;

export const LOGIN_RULES = {
  pair: { limit: 5, windowMs: WINDOW_MS },
  address: { limit: 20, windowMs: WINDOW_MS },
  account: { limit: 10, windowMs: WINDOW_MS, backoff: { baseMs: 30_000, capMs: WINDOW_MS } },
  device: { limit: 5, windowMs: WINDOW_MS },
  setup: { limit: 10, windowMs: WINDOW_MS },
} as const satisfies Record<string, LimitRule>;

type Kind = keyof typeof LOGIN_RULES;

/** The keys a successful sign-in forgets: that pair's or that device's earlier failures. */
export const CLEARED_ON_SUCCESS: readonly Kind[] = ['pair', 'device'];

export class LoginLimiter {
  readonly #limiter: AttemptLimiter<Kind>;

  constructor(opts: { rules?: Partial<Record<Kind, LimitRule>>; maxKeys?: number } = {}) {
    this.#limiter = new AttemptLimiter<Kind>({ ...LOGIN_RULES, ...opts.rules }, opts.maxKeys === undefined ? {} : { maxKeys: opts.maxKeys });
  }

  /** One sign-in attempt for `account` from `address`; `device` is the caller's known-device
   * id for this account, or null. */
  reserveSignIn(req: { address: string; account: string; device: string | null }, now = Date.now()): Reservation {
    const account = req.account.toLowerCase();
    if (req.device !== null) return this.#limiter.reserve([['device', `${account}\n${req.device}`]], now);
    const address = addressKey(req.address);
    return this.#limiter.reserve(
      [
        ['pair', `${address}\n${account}`],
        ['address', address],
        ['account', account],
      ],
      now,
    );
  }

  /** One setup-code attempt from `address`. */
  reserveSetup(address: string, now = Date.now()): Reservation {
    return this.#limiter.reserve([['setup', addressKey(address)]], now);
  }

  get size(): number {
    return this.#limiter.size;
  }
}

/** IPv4 (also IPv4-mapped IPv6) as is; IPv6 by its /64 prefix. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
