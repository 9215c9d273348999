/** The detail page's further actions: change (recreate), duplicate, rename, pause/unpause and
 * kill with a signal. Each goes through the node's Docker endpoint (its policy applies); a
 * refusal is shown in the daemon's words. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { Dialog } from '../components/dialog.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, InlineError, SubmitButton, buttonClass } from '../components/ui.tsx';
import { dockerPath, errorMessage, post } from '../lib/api.ts';
import { useSigningBlock } from '../lib/signing.ts';

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGQUIT'];

export function ContainerMoreActions({ node, id, name, paused, running }: { node: string; id: string; name: string; paused: boolean; running: boolean }): JSX.Element | null {
  const unsignable = useSigningBlock(node);
  const [dialog, setDialog] = useState<'rename' | 'kill' | null>(null);
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const path = (rest: string): string => dockerPath(node, `/containers/${encodeURIComponent(id)}${rest}`);
  const base = `/containers/${encodeURIComponent(node)}/${encodeURIComponent(id.slice(0, 12))}`;
  const open = (d: 'rename' | 'kill'): void => {
    setDialog(d);
    setValue(d === 'rename' ? name : 'SIGKILL');
    setError(null);
  };
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (dialog === 'rename') {
        await post(path(`/rename?name=${encodeURIComponent(value.trim())}`));
        toast.success(`Renamed ${name} to ${value.trim()}.`);
      } else {
        await post(path(`/kill?signal=${encodeURIComponent(value)}`));
        toast.success(`Sent ${value} to ${name}.`);
      }
      setDialog(null);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  // ContainerActions beside these already says why a signed host's actions are not offered.
  if (unsignable) return null;
  return (
    <>
      <a class={buttonClass('default', true)} href={`${base}/edit`}>
        Change<span class="sr-only"> {name}</span>
      </a>
      <a class={buttonClass('default', true)} href={`/containers/run?from=${encodeURIComponent(`${node}/${id}`)}`}>
        Duplicate<span class="sr-only"> {name}</span>
      </a>
      <button type="button" class={buttonClass('default', true)} onClick={() => open('rename')}>
        Rename<span class="sr-only"> {name}</span>
      </button>
      {running && (
        <ActionButton
          small
          what={`${paused ? 'unpause' : 'pause'} ${name}`}
          onClick={async () => {
            await post(path(paused ? '/unpause' : '/pause'));
            return `${name} ${paused ? 'unpaused' : 'paused'}.`;
          }}
        >
          {paused ? 'Unpause' : 'Pause'}
          <span class="sr-only"> {name}</span>
        </ActionButton>
      )}
      {running && (
        <button type="button" class={buttonClass('danger', true)} onClick={() => open('kill')}>
          Kill<span class="sr-only"> {name}</span>
        </button>
      )}
      {dialog && (
        <Dialog title={dialog === 'rename' ? `Rename ${name}` : `Kill ${name}`} onClose={() => setDialog(null)} busy={busy}>
          <form onSubmit={(e) => void submit(e)} noValidate>
            <div class="field">
              <label for="more-value">{dialog === 'rename' ? 'New name' : 'Signal'}</label>
              {dialog === 'rename' ? (
                <input id="more-value" value={value} autocomplete="off" spellcheck={false} onInput={(e) => setValue(e.currentTarget.value)} />
              ) : (
                <select id="more-value" value={value} onChange={(e) => setValue(e.currentTarget.value)}>
                  {SIGNALS.map((s) => (
                    <option key={s}>{s}</option>
                  ))}
                </select>
              )}
            </div>
            {error && <InlineError>{error}</InlineError>}
            <div class="form-actions">
              <SubmitButton busy={busy} variant={dialog === 'kill' ? 'danger' : 'primary'}>
                {dialog === 'rename' ? 'Rename' : 'Send signal'}
              </SubmitButton>
            </div>
          </form>
        </Dialog>
      )}
    </>
  );
}
