/** First-run account creation, or sign-in. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { InlineError, SubmitButton } from '../components/ui.tsx';
import { ApiError, errorMessage } from '../lib/api.ts';
import { createFirstAccount, signIn } from '../lib/session.ts';

export function SignInPage({ setupNeeded, reason }: { setupNeeded: boolean; reason?: string }): JSX.Element {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [setupCode, setSetupCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [retryUntil, setRetryUntil] = useState<number | null>(null);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    document.title = `${setupNeeded ? 'Set up' : 'Sign in'} · dockfleet`;
  }, [setupNeeded]);

  useEffect(() => {
    if (retryUntil === null) return;
    const t = setInterval(() => {
      const n = Date.now();
      setNow(n);
      if (n >= retryUntil) {
        setRetryUntil(null);
        setError(null);
      }
    }, 250);
    return () => clearInterval(t);
  }, [retryUntil]);

  const waitSeconds = retryUntil === null ? 0 : Math.max(0, Math.ceil((retryUntil - now) / 1000));

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (busy || waitSeconds > 0) return;
    setError(null);
    setBusy(true);
    try {
      if (setupNeeded) await createFirstAccount(username.trim(), password, setupCode.trim());
      else await signIn(username.trim(), password);
    } catch (err) {
      if (err instanceof ApiError && err.status === 429) {
        const s = err.retryAfter ?? 30;
        setRetryUntil(Date.now() + s * 1000);
        setNow(Date.now());
        setError('rate');
      } else if (err instanceof ApiError && err.code === 'setup_code_invalid') {
        setError("Wrong setup code. Run `dockfleet setup-code` on the hub's machine to see it.");
      } else if (err instanceof ApiError && (err.status === 401 || err.code === 'unauthenticated')) {
        setError('Wrong username or password.');
      } else {
        setError(errorMessage(err));
      }
      setPassword('');
    } finally {
      setBusy(false);
    }
  };

  const message = error === 'rate' ? `Too many attempts, try again in ${waitSeconds} s.` : error;

  return (
    <div class="auth-page">
      <div class="auth-card">
        <div class="auth-brand">
          <svg viewBox="0 0 32 32" width="36" height="36" aria-hidden="true">
            <rect width="32" height="32" rx="7" fill="var(--accent)" />
            <path d="M7 19h18l-2 6H9z M9 13h4v4H9z M14 13h4v4h-4z M19 13h4v4h-4z M14 8h4v4h-4z" fill="#fff" />
          </svg>
          <span>dockfleet</span>
        </div>
        <h1>{setupNeeded ? 'Create the first account' : 'Sign in'}</h1>
        {setupNeeded ? (
          <p class="muted">
            This hub has no users yet. The account you create now is its administrator. The setup code proves you control the hub's machine: the hub printed it when it started, and{' '}
            <code>dockfleet setup-code</code> shows it.
          </p>
        ) : (
          reason && (
            <p class="notice" role="status">
              {reason}
            </p>
          )
        )}
        <form onSubmit={(e) => void submit(e)} novalidate={false}>
          {setupNeeded && (
            <div class="field">
              <label for="auth-setup-code">Setup code</label>
              <input
                id="auth-setup-code"
                name="setup-code"
                autocomplete="one-time-code"
                autocapitalize="characters"
                spellcheck={false}
                required
                placeholder="XXXX-XXXX-XXXX-XXXX-XXXX"
                value={setupCode}
                onInput={(e) => setSetupCode(e.currentTarget.value)}
                autofocus
              />
            </div>
          )}
          <div class="field">
            <label for="auth-username">Username</label>
            <input
              id="auth-username"
              name="username"
              autocomplete="username"
              autocapitalize="none"
              spellcheck={false}
              required
              value={username}
              onInput={(e) => setUsername(e.currentTarget.value)}
              autofocus={!setupNeeded}
            />
          </div>
          <div class="field">
            <label for="auth-password">Password</label>
            <input
              id="auth-password"
              name="password"
              type="password"
              autocomplete={setupNeeded ? 'new-password' : 'current-password'}
              required
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </div>
          <InlineError>{message}</InlineError>
          <SubmitButton busy={busy} disabled={waitSeconds > 0}>
            {setupNeeded ? 'Create account' : 'Sign in'}
          </SubmitButton>
        </form>
      </div>
    </div>
  );
}
