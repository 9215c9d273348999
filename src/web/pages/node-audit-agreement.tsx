/** The node card's "Host log" line: whether the host's own audit log and the hub's agree, asked
 * again each time the agent reports a new head, with a link to the audit page for that node. */
import type { JSX } from 'preact';
import { useAsync } from '../components/ui.tsx';
import { agreementWords, fetchAgreement } from '../lib/audit-agreement.ts';
import type { NodeView } from '../lib/types.ts';

export function HostLogAgreement({ node }: { node: NodeView }): JSX.Element {
  const head = node.hostAudit?.seq ?? null;
  // Asked again when the head moves, and every half minute while the page is open (the card re-renders on a ticker).
  const state = useAsync((signal) => fetchAgreement(node.name, signal), [node.name, head, node.status, Math.floor(Date.now() / 30_000)]);
  const href = `/audit?node=${encodeURIComponent(node.name)}`;
  if (state.data === undefined) {
    return <span class="muted">{state.error ? 'could not compare with the hub’s log' : 'comparing…'}</span>;
  }
  const a = state.data;
  const tone = a.state === 'agree' ? 'ok' : a.state === 'differ' ? 'bad' : '';
  return (
    <div class="policy-facts">
      <p class="policy-line">
        <span class={`badge${tone ? ` badge-${tone}` : ''}`}>{agreementWords(a)}</span>{' '}
        <a href={href} style={{ textDecoration: 'underline' }}>
          Audit log<span class="sr-only"> of {node.name}</span>
        </a>
      </p>
      {a.state === 'unknown' && a.reason && <p class="policy-line muted small">{a.reason}.</p>}
      {a.state !== 'unknown' && <p class="policy-line muted small">Checked through host entry {a.checkedThrough}.</p>}
      {a.hostChainProblem && <p class="policy-line small bad-text">{a.hostChainProblem}</p>}
    </div>
  );
}
