/** Who is signed in: the session cookie (df_session) is HttpOnly, so the UI asks /api/v1/me. */
import { ApiError, del, get, post, setUnauthorizedHandler } from './api.ts';
import { createStore } from './store.ts';
import type { Me } from './types.ts';

export type SessionState = { status: 'loading' } | { status: 'signedOut'; setupNeeded: boolean; reason?: string } | { status: 'signedIn'; me: Me } | { status: 'error'; message: string };

export const session = createStore<SessionState>({ status: 'loading' });

async function setupNeeded(): Promise<boolean> {
  try {
    const r = await get<{ needed: boolean }>('/api/v1/setup', { quiet401: true });
    return r.needed === true;
  } catch {
    return false;
  }
}

export async function loadSession(): Promise<void> {
  try {
    const me = await get<Me>('/api/v1/me', { quiet401: true });
    session.set({ status: 'signedIn', me });
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      session.set({ status: 'signedOut', setupNeeded: await setupNeeded() });
    } else {
      session.set({ status: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  }
}

/** Reads /api/v1/me again (after the live feed reconnects: the hub ends a user's streams when
 * its grants or role change) and updates the session only when something changed. */
export async function refreshMe(): Promise<void> {
  const now = session.get();
  if (now.status !== 'signedIn') return;
  try {
    const me = await get<Me>('/api/v1/me', { quiet401: true });
    if (JSON.stringify(me) !== JSON.stringify(now.me)) session.set({ status: 'signedIn', me });
  } catch {
    /* the live feed's own fallback notices a signed-out session */
  }
}

export async function signIn(username: string, password: string): Promise<void> {
  await post('/api/v1/session', { username, password }, { quiet401: true });
  await loadSession();
}

/** `setupCode` comes from the hub's machine (`dockfleet setup-code`, or the hub's first lines). */
export async function createFirstAccount(username: string, password: string, setupCode: string): Promise<void> {
  await post('/api/v1/setup', { username, password, setupCode }, { quiet401: true });
  await loadSession();
}

export async function signOut(): Promise<void> {
  try {
    await del('/api/v1/session', { quiet401: true });
  } finally {
    session.set({ status: 'signedOut', setupNeeded: false });
  }
}

setUnauthorizedHandler(() => {
  const s = session.get();
  if (s.status === 'signedIn') session.set({ status: 'signedOut', setupNeeded: false, reason: 'Your session has ended. Sign in again.' });
});
