/** The "Files" entry point of a volume: a link to its file browser where the node's policy turns
 * `volumeFiles` on, else a disabled button that says why (instead of a browser that fails). */
import type { JSX } from 'preact';
import { Icon } from './icons.tsx';
import { buttonClass } from './ui.tsx';
import { fleet } from '../lib/live.ts';
import { policyAllows, policyRefusal } from '../lib/policy.ts';
import { USE_CONNECT, signedIntentOf } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';

export function VolumeFilesButton({ node, volume }: { node: string; volume: string }): JSX.Element {
  const view = useStore(fleet).nodes?.find((n) => n.name === node);
  const href = `/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(volume)}/files`;
  // On an "all" host even reading a volume's files needs an intent the UI does not make (the
  // browser opens read-only on a "mutations" host: volume-files.tsx).
  const signed = signedIntentOf(view) === 'all';
  if (policyAllows(view, 'volumeFiles') && !signed) {
    return (
      <a class={buttonClass('ghost', true)} href={href} aria-label={`Files of ${volume}`}>
        <Icon name="folder" size={15} />
        Files
      </a>
    );
  }
  const reason = signed ? `${USE_CONNECT} The web UI does not sign volume-file changes.` : (policyRefusal(view, 'volumeFiles') ?? '');
  return (
    <button type="button" class={buttonClass('ghost', true)} disabled title={reason} aria-label={`Files of ${volume}: ${reason}`}>
      <Icon name="folder" size={15} />
      Files
    </button>
  );
}
