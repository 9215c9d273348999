/** A node's labels: shown as key=value chips, edited in a dialog by admins and operators. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { apiNodePath, json } from '../lib/api.ts';
import { toast } from './toasts.tsx';
import { Dialog } from './dialog.tsx';
import { useFormSubmit } from './form-submit.ts';
import { InlineError, SubmitButton, buttonClass } from './ui.tsx';

const KEY = /^[a-z0-9](?:[a-z0-9]|[.-](?=[a-z0-9]))*$/;
const RESERVED = ['com.docker.', 'io.docker.', 'org.dockerproject.'];

export function LabelChips({ labels }: { labels: Record<string, string> | undefined }): JSX.Element {
  const entries = Object.entries(labels ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) return <span class="muted small">no labels</span>;
  return (
    <ul class="label-chips" aria-label="Labels">
      {entries.map(([k, v]) => (
        <li key={k} class="chip mono">
          {k}={v}
        </li>
      ))}
    </ul>
  );
}

interface Row {
  key: string;
  value: string;
}

export function LabelsDialog({ node, labels, onClose }: { node: string; labels: Record<string, string>; onClose: () => void }): JSX.Element {
  const [rows, setRows] = useState<Row[]>(() => {
    const r = Object.entries(labels)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => ({ key, value }));
    return r.length > 0 ? r : [{ key: '', value: '' }];
  });
  const { busy, error, setError, run } = useFormSubmit();
  const set = (i: number, patch: Partial<Row>): void => setRows((rs) => rs.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const next: Record<string, string> = {};
    for (const r of rows) {
      const k = r.key.trim();
      if (!k && !r.value) continue;
      if (!KEY.test(k) || k.length > 128) return setError(`Label key ${JSON.stringify(k)}: lowercase letters and digits with single dots or dashes between them.`);
      if (RESERVED.some((p) => k.startsWith(p))) return setError(`Label key ${k}: keys under com.docker., io.docker. and org.dockerproject. are Docker's.`);
      if (k in next) return setError(`Label key ${k} is given twice.`);
      next[k] = r.value;
    }
    const change: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(next)) if (labels[k] !== v) change[k] = v;
    for (const k of Object.keys(labels)) if (!(k in next)) change[k] = null;
    if (Object.keys(change).length === 0) return onClose();
    await run(async () => {
      await json('PUT', apiNodePath(node, '/labels'), { body: { labels: change } });
      toast.success(`${node}: labels saved`);
      onClose();
    });
  };

  return (
    <Dialog title={`Labels of ${node}`} onClose={onClose} busy={busy}>
      <form onSubmit={(e) => void submit(e)} noValidate>
        <p class="hint" id="labels-hint">
          Stacks deployed with a label selector (key=value) go to every node carrying that label at the time of the deploy.
        </p>
        {rows.map((r, i) => (
          <div class="label-row" key={i}>
            <label class="sr-only" for={`label-key-${i}`}>
              Label {i + 1} key
            </label>
            <input
              id={`label-key-${i}`}
              class="mono"
              placeholder="site"
              value={r.key}
              autocomplete="off"
              spellcheck={false}
              aria-describedby="labels-hint"
              onInput={(e) => set(i, { key: e.currentTarget.value })}
            />
            <span aria-hidden="true">=</span>
            <label class="sr-only" for={`label-value-${i}`}>
              Label {i + 1} value
            </label>
            <input id={`label-value-${i}`} class="mono" placeholder="shop" value={r.value} autocomplete="off" spellcheck={false} onInput={(e) => set(i, { value: e.currentTarget.value })} />
            <button type="button" class={buttonClass('ghost', true)} onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}>
              Remove<span class="sr-only"> label {i + 1}</span>
            </button>
          </div>
        ))}
        <button type="button" class={buttonClass('default', true)} onClick={() => setRows((rs) => [...rs, { key: '', value: '' }])}>
          Add a label
        </button>
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy}>Save labels</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
