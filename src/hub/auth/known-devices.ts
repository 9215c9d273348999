/**
 * Known devices (OWASP's "device cookies"): after a successful sign-in the hub gives the
 * browser or client a cookie naming the account and a random id, with an HMAC under a key only
 * the hub holds. Sign-in attempts that bring a valid cookie for the account they try are
 * limited per device instead of per account (see login-limiter.ts). The cookie proves only that
 * this client signed in to the account before; it never authenticates anything by itself.
 * The key lives in memory: after a hub restart every device is unknown again, as the limiter's
 * counts are gone too.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const DEVICE_COOKIE = 'df_device';
const MAX_AGE_S = 365 * 24 * 3600;
const VALUE = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

export class KnownDevices {
  readonly #key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.#key = key;
  }

  /** A Set-Cookie line for a new device id bound to `account`. Sent only to the sign-in route. */
  cookieFor(account: string): string {
    const id = randomBytes(16).toString('base64url');
    return `${DEVICE_COOKIE}=${id}.${this.#mac(account, id).toString('base64url')}; Path=/api/v1/session; HttpOnly; Secure; SameSite=Strict; Max-Age=${MAX_AGE_S}`;
  }

  /** The device id when the Cookie header holds a valid device cookie for `account`, else null. */
  deviceOf(cookieHeader: string | undefined, account: string): string | null {
    for (const part of (cookieHeader ?? '').split(';')) {
      const [name, value = ''] = part.trim().split('=', 2);
      if (name !== DEVICE_COOKIE) continue;
      const m = VALUE.exec(value);
      if (m && timingSafeEqual(Buffer.from(m[2]!, 'base64url'), this.#mac(account, m[1]!))) return m[1]!;
    }
    return null;
  }

  #mac(account: string, id: string): Buffer {
    return createHmac('sha256', this.#key).update(`dockfleet device v1\n${account.toLowerCase()}\n${id}`).digest();
  }
}
