/**
 * Enrolling a node: ask for its name, show the one-time code and the agent command, then wait
 * visibly for the agent (the live feed) and say when it arrives. One dialog throughout: the
 * form is replaced by the code in place, and focus moves to the code's heading (it was lost to
 * the page when the form it sat in disappeared).
 */
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Dialog } from './dialog.tsx';
import { CopyField, InlineError, Spinner, SubmitButton, buttonClass } from './ui.tsx';
import { errorMessage, post } from '../lib/api.ts';
import { ago, dateTime } from '../lib/format.ts';
import { fleet } from '../lib/live.ts';
import { useStore } from '../lib/store.ts';
import type { EnrollmentCreated } from '../lib/types.ts';

const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function EnrollDialog({ onClose }: { onClose: () => void }): JSX.Element {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<EnrollmentCreated | null>(null);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const n = name.trim();
    if (!NODE_NAME.test(n)) {
      setError('Node names are 1–63 lowercase letters, digits or dashes, not starting with a dash.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      setCreated(await post<EnrollmentCreated>('/api/v1/enrollments', { name: n }));
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={created ? `Enroll ${created.name}` : 'Enroll a node'}
      onClose={onClose}
      busy={busy}
      wide={created !== null}
      footer={
        created ? (
          <button type="button" class={buttonClass('primary')} onClick={onClose}>
            Done
          </button>
        ) : undefined
      }
    >
      {created ? (
        <CodeShown created={created} />
      ) : (
        <form onSubmit={(e) => void submit(e)} noValidate>
          <div class="field">
            <label for="enroll-name">Node name</label>
            <input
              id="enroll-name"
              required
              autocomplete="off"
              autocapitalize="none"
              spellcheck={false}
              maxLength={63}
              placeholder="shop-01"
              value={name}
              aria-describedby="enroll-name-hint"
              aria-invalid={error ? 'true' : undefined}
              onInput={(e) => setName(e.currentTarget.value.toLowerCase())}
            />
            <div class="hint" id="enroll-name-hint">
              Lowercase letters, digits and dashes.
            </div>
          </div>
          <InlineError>{error}</InlineError>
          <div class="form-actions">
            <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
              Cancel
            </button>
            <SubmitButton busy={busy}>Create enrollment code</SubmitButton>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function CodeShown({ created }: { created: EnrollmentCreated }): JSX.Element {
  const heading = useRef<HTMLParagraphElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const node = useStore(fleet).nodes?.find((n) => n.name === created.name);
  const arrived = node !== undefined && node.status !== 'offline';
  const command = `dockfleet agent --hub ${window.location.origin} --code ${created.code}`;
  return (
    <>
      <p ref={heading} tabIndex={-1} data-enroll-code>
        Run this on the Docker host. The code works once and expires {ago(created.expiresAt)} ({dateTime(created.expiresAt)}).
      </p>
      <CopyField label="Agent command" value={command} />
      <p class="muted small">
        The agent dials out to the hub and pins its certificate authority from the code; it never listens on a port. Use <code>npx dockfleet agent …</code> where dockfleet is not installed globally,
        and add <code>--state DIR</code> to choose where it keeps its key.
      </p>
      <details>
        <summary>Just the code</summary>
        <CopyField label="Enrollment code" value={created.code} />
      </details>
      <p role="status" class={arrived ? 'ok-text' : 'muted'}>
        {arrived ? (
          <>
            Node <strong>{created.name}</strong> has connected ({node.status}).
          </>
        ) : (
          <>
            <Spinner /> Waiting for the agent of {created.name} to connect…
          </>
        )}
      </p>
    </>
  );
}
