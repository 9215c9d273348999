/**
 * The hand-off page (/edge-sign-in?host=APP&return=PATH): an app on the edge sent the browser
 * here to sign in. Signed in already (or once the sign-in page is done), it asks the hub for a
 * one-time code for that app host and goes straight back to the app's callback with it. The
 * hub's session cookie is SameSite=Strict, so only this same-origin request can carry it.
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Spinner, buttonClass } from '../components/ui.tsx';
import { errorMessage, post } from '../lib/api.ts';
import type { Me } from '../lib/types.ts';

export const EDGE_SIGN_IN_PATH = '/edge-sign-in';

/** The app host the page is asked to sign in to, for the sign-in page's notice. */
export function edgeSignInHost(): string {
  return new URLSearchParams(window.location.search).get('host') ?? '';
}

export function EdgeSignInPage({ me }: { me: Me }): JSX.Element {
  const [error, setError] = useState<string | null>(null);
  const asked = useRef(false);
  const query = new URLSearchParams(window.location.search);
  const host = query.get('host') ?? '';
  const back = query.get('return') ?? '/';

  useEffect(() => {
    document.title = `Signing in to ${host || 'an app'} · dockfleet`;
    if (asked.current) return;
    asked.current = true;
    post<{ url: string }>('/api/v1/edge/hand-off', { host, return: back })
      // replace: the back button returns to the app, not to this page (which would ask again).
      .then((answer) => window.location.replace(answer.url))
      .catch((err: unknown) => setError(errorMessage(err)));
  }, []);

  return (
    <div class="auth-page">
      <div class="auth-card">
        {error === null ? (
          <>
            <h1>Signing in to {host}</h1>
            <p class="muted" role="status">
              <Spinner /> Continuing as <strong>{me.name}</strong>…
            </p>
          </>
        ) : (
          <>
            <h1>Cannot sign in to {host || 'this app'}</h1>
            <p class="inline-error" role="alert">
              {error}
            </p>
            <a class={buttonClass('default')} href="/">
              Go to dockfleet
            </a>
          </>
        )}
      </div>
    </div>
  );
}
