/** The signed-in user: password, personal API tokens, signing keys, sign out. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Dialog, confirmAction } from '../components/dialog.tsx';
import { useFormSubmit } from '../components/form-submit.ts';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, CopyField, Empty, InlineError, KeyFacts, PageHeader, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { del, get, post } from '../lib/api.ts';
import { ago, dateTime } from '../lib/format.ts';
import type { Me, TokenInfo as BaseToken } from '../lib/types.ts';
import { SigningKeysCard } from './account-signing-keys.tsx';

/** A token as listed: when it expires and when it was last used (at most a minute stale). */
type TokenInfo = BaseToken & { expiresAt?: string | null; lastUsedAt?: string | null };

export function AccountPage({ me }: { me: Me }): JSX.Element {
  return (
    <>
      <PageHeader title="Account" />
      <div class="account-grid">
        <section class="card" aria-labelledby="acc-you">
          <h2 id="acc-you" class="card-title">
            You
          </h2>
          <KeyFacts
            items={[
              ['Username', me.name],
              ['Role', <RoleText role={me.role} />],
            ]}
          />
        </section>
        <PasswordCard />
        <TokensCard />
        <SigningKeysCard me={me} />
      </div>
    </>
  );
}

function RoleText({ role }: { role: Me['role'] }): JSX.Element {
  const what = role === 'admin' ? 'may do anything, manage nodes and read the audit log' : role === 'operator' ? 'may change containers and other Docker objects' : 'may only read';
  return (
    <span>
      <strong>{role}</strong> <span class="muted">— {what}</span>
    </span>
  );
}

function PasswordCard(): JSX.Element {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const { busy, error, setError, run } = useFormSubmit();
  const [done, setDone] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(null);
    setDone(false);
    if (next !== again) {
      setError('The new passwords differ.');
      return;
    }
    if (next.length < 8) {
      setError('Use at least 8 characters.');
      return;
    }
    await run(async () => {
      await post('/api/v1/me/password', { current, next }, { quiet401: true });
      setCurrent('');
      setNext('');
      setAgain('');
      setDone(true);
      toast.success('Password changed; your other sessions were signed out');
    });
  };

  return (
    <section class="card" aria-labelledby="acc-pw">
      <h2 id="acc-pw" class="card-title">
        Change password
      </h2>
      <form onSubmit={(e) => void submit(e)}>
        <input type="text" name="username" autocomplete="username" class="sr-only" tabIndex={-1} aria-hidden="true" readOnly value="" />
        <div class="field">
          <label for="pw-current">Current password</label>
          <input id="pw-current" type="password" autocomplete="current-password" required value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="pw-next">New password</label>
          <input id="pw-next" type="password" autocomplete="new-password" required minLength={8} value={next} onInput={(e) => setNext(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="pw-again">Repeat new password</label>
          <input id="pw-again" type="password" autocomplete="new-password" required value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        </div>
        <InlineError>{error}</InlineError>
        {done && (
          <p class="ok-text" role="status">
            Password changed. Other sessions were signed out.
          </p>
        )}
        <SubmitButton busy={busy}>Change password</SubmitButton>
      </form>
    </section>
  );
}

function TokensCard(): JSX.Element {
  const tokens = useAsync((signal) => get<TokenInfo[]>('/api/v1/tokens', { signal }), []);
  const [creating, setCreating] = useState(false);

  const askRevoke = (t: TokenInfo) => () =>
    confirmAction({
      title: `Delete token ${t.name}?`,
      body: <p>Tools using this token stop working at once.</p>,
      confirmLabel: 'Delete',
      danger: true,
    });
  const revoke = async (t: TokenInfo): Promise<void> => {
    await del(`/api/v1/tokens/${encodeURIComponent(t.id)}`);
    toast.success(`Token ${t.name} deleted`);
    tokens.reload();
  };

  return (
    <section class="card span-2" aria-labelledby="acc-tokens">
      <div class="card-head">
        <h2 id="acc-tokens" class="card-title">
          API tokens
        </h2>
        <button type="button" class={buttonClass('primary', true)} onClick={() => setCreating(true)}>
          New token
        </button>
      </div>
      <p class="muted small">
        For the dockfleet CLI and scripts: <code>DOCKFLEET_TOKEN=…</code>, or <code>Authorization: Bearer …</code>. A token acts as you, with your role.
      </p>
      <AsyncView state={tokens} loadingLabel="Loading tokens…">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No tokens" />
          ) : (
            <table class="table responsive">
              <caption class="sr-only">Your API tokens</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Created</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((t) => (
                  <tr key={t.id}>
                    <td data-label="Name" class="strong">
                      {t.name}
                    </td>
                    <td data-label="Created" title={dateTime(t.createdAt)}>
                      {ago(t.createdAt)}
                    </td>
                    <td data-label="Expires">{t.expiresAt ? dateTime(t.expiresAt) : 'never'}</td>
                    <td data-label="Last used" title={t.lastUsedAt ? dateTime(t.lastUsedAt) : undefined}>
                      {t.lastUsedAt ? ago(t.lastUsedAt) : 'never'}
                    </td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <ActionButton small variant="danger" what={`Delete ${t.name}`} confirm={askRevoke(t)} onClick={() => revoke(t)}>
                          Delete
                        </ActionButton>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </AsyncView>
      {creating && <NewTokenDialog onClose={() => setCreating(false)} onCreated={tokens.reload} />}
    </section>
  );
}

function NewTokenDialog({ onClose, onCreated }: { onClose: () => void; onCreated: () => void }): JSX.Element {
  const [name, setName] = useState('');
  const [days, setDays] = useState('90');
  const { busy, error, run } = useFormSubmit();
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      setCreated(await post<{ name: string; token: string }>('/api/v1/tokens', { name: name.trim(), expiresInDays: Number(days) }));
      onCreated();
    });
  };

  if (created) {
    return (
      <Dialog
        title={`Token ${created.name}`}
        onClose={onClose}
        wide
        footer={
          <button type="button" class={buttonClass('primary')} onClick={onClose}>
            Done
          </button>
        }
      >
        <p>
          <strong>Copy it now: it is shown only once.</strong> The hub keeps only its hash.
        </p>
        <CopyField label="API token" value={created.token} />
      </Dialog>
    );
  }
  return (
    <Dialog title="New API token" onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="token-name">Token name</label>
          <input id="token-name" required maxLength={100} autocomplete="off" placeholder="ci-deploy" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="token-days">Expires after (days)</label>
          <input id="token-days" type="number" required min={1} max={3650} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
        </div>
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy}>Create token</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
