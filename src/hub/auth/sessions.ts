/**
 * Browser sessions: a random secret in an HttpOnly, Secure, SameSite=Strict cookie; the store
 * keeps only its hash. Requests authenticated by the cookie that change something must also
 * carry X-Dockfleet-UI (a custom header: a cross-site page cannot send it without a CORS
 * preflight, which the hub never grants).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.ts';

export const SESSION_COOKIE = 'df_session';
export const UI_HEADER = 'x-dockfleet-ui';
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** The session cookie's value from a Cookie header, if any. */
export function sessionIdFrom(cookieHeader: string | undefined): string | null {
  if (!cookieHeader) return null;
  for (const part of cookieHeader.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) {
      const value = rest.join('=');
      return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : null;
    }
  }
  return null;
}

export function sessionCookie(id: string, maxAgeMs = SESSION_TTL_MS): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

export function clearedSessionCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0`;
}

export async function createSession(store: Store, userId: string): Promise<{ id: string; idHash: string }> {
  const id = randomBytes(32).toString('base64url');
  const now = Date.now();
  const idHash = hashSessionId(id);
  await store.insertSession({ idHash, userId, createdAt: now, expiresAt: now + SESSION_TTL_MS });
  return { id, idHash };
}
