/** Confirm-and-prune dialog for containers, images, volumes or networks on one node. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { prune, type PruneKind } from '../lib/actions.ts';
import { errorMessage } from '../lib/api.ts';
import { Dialog } from './dialog.tsx';
import { toast } from './toasts.tsx';
import { InlineError, SubmitButton, buttonClass } from './ui.tsx';

const WHAT: Record<PruneKind, string> = {
  containers: 'Removes every stopped container.',
  images: 'Removes dangling images (untagged layers no container uses).',
  volumes: 'Removes anonymous volumes no container uses. Their data is gone for good.',
  networks: 'Removes networks no container uses.',
};

export function PruneDialog({ kind, nodes, node: initialNode, onClose, onDone }: {
  kind: PruneKind;
  /** Choices of node; when there is one, no choice is shown. */
  nodes: string[];
  node?: string;
  onClose: () => void;
  onDone?: (message: string) => void;
}): JSX.Element {
  const [node, setNode] = useState(initialNode ?? nodes[0] ?? '');
  const [all, setAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!node) return;
    setBusy(true);
    setError(null);
    try {
      const msg = await prune(node, kind, kind === 'images' ? { allImages: all } : kind === 'volumes' ? { allVolumes: all } : {});
      setResult(msg);
      toast.success(msg);
      onDone?.(msg);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const title = `Prune ${kind === 'containers' ? 'stopped containers' : `unused ${kind}`}`;
  if (result) {
    return (
      <Dialog title={title} onClose={onClose} footer={<button type="button" class={buttonClass('primary')} onClick={onClose} data-autofocus="">Done</button>}>
        <p role="status">{result}</p>
      </Dialog>
    );
  }
  return (
    <Dialog title={title} onClose={onClose} busy={busy} alert>
      <form onSubmit={(e) => void submit(e)}>
        <p>{WHAT[kind]}</p>
        {nodes.length > 1 || !initialNode ? (
          <div class="field">
            <label for="prune-node">Node</label>
            <select id="prune-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
              {nodes.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </div>
        ) : (
          <p>Node: <strong>{node}</strong></p>
        )}
        {(kind === 'images' || kind === 'volumes') && (
          <div class="check">
            <input id="prune-all" type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
            <label for="prune-all">{kind === 'images' ? 'Also remove unused tagged images' : 'Also remove unused named volumes'}</label>
          </div>
        )}
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>Cancel</button>
          <SubmitButton busy={busy} variant="danger" disabled={!node}>Prune</SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
