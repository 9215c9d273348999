/**
 * Long-lived streams (the UI's live feed, the events stream) resolve the caller once, when they
 * open. This keeps them honest afterwards: every few seconds the caller is resolved again from
 * the same credentials, and when what it may see has changed (a grant added or removed, the
 * global role or scope changed) or it is no longer signed in at all (disabled, session ended,
 * token revoked), the stream is told to end. The browser's EventSource reconnects by itself and
 * gets a fresh snapshot under the new access. Label changes need no watch: NodeAccess reads
 * labels live at each check.
 */
import type { Principal } from '../auth/principals.ts';

export const ACCESS_RECHECK_MS = 2_000;

/** What decides a principal's sight and rights: its user, global role and grants (order-free). */
export function accessKey(p: Principal): string {
  const grants = p.access.grants.map((g) => `${g.node ?? ''}\u0000${g.labelKey ?? ''}\u0000${g.labelValue ?? ''}\u0000${g.role}`).sort();
  return JSON.stringify([p.userId, p.access.globalRole, grants]);
}

/** Calls `onChange` once when the principal's access changes or it can no longer be resolved; returns a stop function. */
export function watchAccess(initial: Principal, recheck: () => Promise<Principal>, onChange: () => void, everyMs = ACCESS_RECHECK_MS): () => void {
  const key = accessKey(initial);
  let stopped = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    recheck()
      .then(
        (now) => accessKey(now) !== key,
        () => true,
      )
      .then((changed) => {
        busy = false;
        if (changed && !stopped) {
          stop();
          onChange();
        }
      });
  }, everyMs);
  timer.unref();
  const stop = (): void => {
    stopped = true;
    clearInterval(timer);
  };
  return stop;
}
