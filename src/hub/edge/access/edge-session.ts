/**
 * The edge session on one app host: the `df_edge` cookie. Its value is sealed (AES-256-GCM under
 * the hub's master key, secret-box.ts) with the host name in the associated data, so a cookie
 * copied to another host does not open there; inside are the hub session it hangs on (its hash),
 * the user and an expiry. Nothing about it is stored: the hub session is looked up on each
 * request, so signing out at the hub, a password change that ends sessions, or a disabled user
 * ends every edge session made from it. The value never reaches the app (the proxy strips it).
 */
import { z } from 'zod';
import { EDGE_SESSION_COOKIE } from '../edge-access-gate.ts';
import type { SecretBox } from '../../secret-box.ts';

/** An edge session lasts this long at most (and never past its hub session). */
export const EDGE_SESSION_TTL_MS = 12 * 3600 * 1000;
/** Sealed values are ~200 characters; anything far longer is not ours. */
const MAX_COOKIE_VALUE = 1024;

const sealedSession = z.object({
  v: z.literal(1),
  host: z.string(),
  session: z.string().regex(/^[0-9a-f]{64}$/),
  user: z.string(),
  expiresAt: z.number().int(),
});
export type EdgeSession = Omit<z.infer<typeof sealedSession>, 'v'>;

function context(host: string): string {
  return `dockfleet.edge-session.v1 ${host}`;
}

export function sealEdgeSession(box: SecretBox, s: EdgeSession): string {
  return box.seal(JSON.stringify({ v: 1, ...s }), context(s.host));
}

/** The session a cookie value holds for `host`, or null: sealed for another host, tampered, or expired. */
export function openEdgeSession(box: SecretBox, value: string, host: string, now: number): EdgeSession | null {
  if (value.length > MAX_COOKIE_VALUE) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(box.openText(value, context(host)));
  } catch {
    return null;
  }
  const s = sealedSession.safeParse(parsed);
  if (!s.success || s.data.host !== host || s.data.expiresAt <= now) return null;
  const { v: _v, ...session } = s.data;
  return session;
}

/** Every `df_edge` value in a Cookie header (an app may have set one under another path). */
export function edgeCookieValues(cookieHeader: string | string[] | undefined): string[] {
  const header = Array.isArray(cookieHeader) ? cookieHeader.join('; ') : (cookieHeader ?? '');
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== EDGE_SESSION_COOKIE) continue;
    values.push(part.slice(eq + 1).trim());
  }
  return values;
}

/** Host-only (no Domain), the whole host (Path=/), Lax: the first navigation from another site carries it. */
export function edgeSessionCookie(value: string, maxAgeMs: number): string {
  return `${EDGE_SESSION_COOKIE}=${value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=${Math.max(0, Math.floor(maxAgeMs / 1000))}`;
}

export function clearedEdgeSessionCookie(): string {
  return `${EDGE_SESSION_COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0`;
}
