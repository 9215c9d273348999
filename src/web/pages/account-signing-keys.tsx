/**
 * Account → Signing keys (issue 13): make this browser's operator key (WebCrypto Ed25519, kept
 * non-extractable in IndexedDB), show the line a host's policy file takes to obey it, list the
 * user's keys (this browser's marked) and revoke them. The hub keeps only public halves; a host
 * obeys a key only when its own policy file lists it.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { confirmAction } from '../components/dialog.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, CopyField, Empty, InlineError, SubmitButton, buttonClass, useAsync } from '../components/ui.tsx';
import { useFormSubmit } from '../components/form-submit.ts';
import { del, get } from '../lib/api.ts';
import { ago, dateTime } from '../lib/format.ts';
import { createBrowserKey, forgetBrowserKey, platformName, type BrowserKey } from '../lib/operator-key.ts';
import { useBrowserKey } from '../lib/signing.ts';
import type { Me } from '../lib/types.ts';
import type { OperatorKeyView } from '../../protocol/operator-keys.ts';

/** The policy-file section that makes a host obey this key (other keys go in the same list). */
export function policyLine(publicKey: string): string {
  return `"signedIntent": { "operators": ["${publicKey}"], "require": "mutations" }`;
}

export function SigningKeysCard({ me }: { me: Me }): JSX.Element {
  const keys = useAsync((signal) => get<OperatorKeyView[]>('/api/v1/operator-keys', { signal }), []);
  const mine = useBrowserKey();
  const { busy, error, run } = useFormSubmit();
  const [name, setName] = useState(`browser on ${platformName()}`);

  // Arriving from a signed host's "Signing keys" link: bring the card into view.
  useEffect(() => {
    if (location.hash === '#signing-keys') document.getElementById('signing-keys')?.scrollIntoView();
  }, []);

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    await run(async () => {
      const key = await createBrowserKey(me.name, name.trim() || `browser on ${platformName()}`);
      toast.success(`Signing key ${key.fingerprint} made in this browser`);
      keys.reload();
    });
  };

  const askRevoke = (k: OperatorKeyView) => () =>
    confirmAction({
      title: `Revoke key ${k.name}?`,
      body: <p>The hub marks it revoked{mine?.fingerprint === k.id ? ' and this browser forgets it' : ''}. Hosts whose policy file lists it still obey it until their owner removes it there.</p>,
      confirmLabel: 'Revoke',
      danger: true,
    });
  const revoke = async (k: OperatorKeyView): Promise<void> => {
    await del(`/api/v1/operator-keys/${encodeURIComponent(k.id)}`);
    if (mine?.fingerprint === k.id) await forgetBrowserKey(me.name);
    toast.success(`Key ${k.name} revoked`);
    keys.reload();
  };

  return (
    <section class="card span-2" id="signing-keys" aria-labelledby="acc-signing">
      <h2 id="acc-signing" class="card-title">
        Signing keys
      </h2>
      <p class="muted small">
        A host whose policy file has <code>signedIntent</code> changes only what a key it lists has signed. This browser signs with a key it made itself and cannot export; the CLI has its own (
        <code>dockfleet operator-key create</code>).
      </p>
      {mine === undefined ? null : mine ? (
        <ThisBrowsersKey k={mine} />
      ) : (
        <form class="signing-create" onSubmit={(e) => void create(e)}>
          <p>This browser has no signing key.</p>
          <div class="field">
            <label for="signing-name">Key name</label>
            <input id="signing-name" required maxLength={100} autocomplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </div>
          <InlineError>{error}</InlineError>
          <SubmitButton busy={busy}>Make a signing key in this browser</SubmitButton>
        </form>
      )}
      <h3 class="card-title">Your keys</h3>
      <AsyncView state={keys} loadingLabel="Loading keys…">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No signing keys" />
          ) : (
            <table class="table responsive">
              <caption class="sr-only">Your signing keys</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Fingerprint</th>
                  <th scope="col">Created</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.map((k) => (
                  <tr key={k.id}>
                    <td data-label="Name" class="strong">
                      {k.name}
                      {mine?.fingerprint === k.id && <span class="badge badge-info"> this browser</span>}
                    </td>
                    <td data-label="Fingerprint">
                      <code>{k.id}</code>
                    </td>
                    <td data-label="Created" title={dateTime(k.createdAt)}>
                      {ago(k.createdAt)}
                    </td>
                    <td data-label="State">{k.revokedAt ? `revoked ${ago(k.revokedAt)}` : 'current'}</td>
                    <td class="cell-actions">
                      {!k.revokedAt && (
                        <div class="row-actions">
                          <ActionButton small variant="danger" what={`Revoke ${k.name}`} confirm={askRevoke(k)} onClick={() => revoke(k)}>
                            Revoke
                          </ActionButton>
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </AsyncView>
    </section>
  );
}

function ThisBrowsersKey({ k }: { k: BrowserKey }): JSX.Element {
  return (
    <div class="signing-mine">
      <p>
        This browser's key: <strong>{k.name}</strong>, fingerprint <code data-testid="browser-key-fingerprint">{k.fingerprint}</code>.
      </p>
      <p class="small">Its public key, as a host's policy file lists it:</p>
      <CopyField label="Public key" value={k.publicKey} />
      <p class="small">
        For a host that should obey it, in its policy file (add it to <code>operators</code> if the section is there):
      </p>
      <CopyField label="Policy file line" value={policyLine(k.publicKey)} />
      <p class="muted small">
        Forgetting it here (
        <button type="button" class={buttonClass('link', true)} onClick={() => void forget(k)}>
          forget this browser's key
        </button>
        ) does not revoke it at the hub.
      </p>
    </div>
  );
}

async function forget(k: BrowserKey): Promise<void> {
  const ok = await confirmAction({
    title: "Forget this browser's key?",
    body: <p>The private key is deleted from this browser for good. Revoke it in the list below too, and remove it from hosts' policy files.</p>,
    confirmLabel: 'Forget',
    danger: true,
  });
  if (ok) await forgetBrowserKey(k.user);
}
