/** Nodes: status, engine, host facts, counts; enroll, approve, rotate, revoke. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { AgentRollout } from '../components/agent-rollout.tsx';
import { confirmAction } from '../components/dialog.tsx';
import { EnrollDialog } from '../components/enroll-dialog.tsx';
import { LabelChips, LabelsDialog } from '../components/node-labels.tsx';
import { HostUse } from '../components/sparkline.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, Empty, ErrorState, Loading, PageHeader, StatusBadge, buttonClass, useTicker } from '../components/ui.tsx';
import { apiNodePath, post } from '../lib/api.ts';
import { ago, bytes, dateTime } from '../lib/format.ts';
import { fleet } from '../lib/live.ts';
import { policyExtras, policyOverview } from '../lib/policy.ts';
import { canChange } from '../lib/access.ts';
import { HostLogAgreement } from './node-audit-agreement.tsx';
import { useStore } from '../lib/store.ts';
import type { Me, NodeView } from '../lib/types.ts';

export function NodesPage({ me }: { me: Me }): JSX.Element {
  const f = useStore(fleet);
  const [enrolling, setEnrolling] = useState(false);
  useTicker(15_000);
  const isAdmin = me.role === 'admin';
  // Node labels stay a global admin/operator action, never a per-node one: a label can bring a node
  // under someone's label grant (widening what another user reaches), so an operator *grant* on this
  // node (a customer, or a global viewer) is not enough. The hub refuses it the same way.
  const canLabel = !me.scoped && (me.role === 'admin' || me.role === 'operator');
  const nodes = f.nodes;
  const online = nodes?.filter((n) => n.status === 'online').length ?? 0;

  return (
    <>
      <PageHeader title="Nodes" sub={nodes ? `${nodes.length} ${nodes.length === 1 ? 'node' : 'nodes'}, ${online} online` : undefined}>
        {isAdmin && (
          <button type="button" class={buttonClass('primary')} onClick={() => setEnrolling(true)}>
            Enroll node
          </button>
        )}
      </PageHeader>
      {isAdmin && <AgentRollout />}
      {nodes === null ? (
        f.error ? (
          <ErrorState error={f.error} title="Could not load nodes" />
        ) : (
          <Loading label="Loading nodes…" />
        )
      ) : nodes.length === 0 ? (
        <Empty title="No nodes yet">
          <p>Enroll a Docker host: the hub gives you a one-time code and the command to run on that host. The agent only dials out, so hosts behind NAT work too.</p>
          {isAdmin && (
            <button type="button" class={buttonClass('primary')} onClick={() => setEnrolling(true)}>
              Enroll node
            </button>
          )}
        </Empty>
      ) : (
        <div class="node-grid">
          {[...nodes]
            .sort((a, b) => Number(a.status === 'revoked') - Number(b.status === 'revoked') || a.name.localeCompare(b.name))
            .map((n) => (
              <NodeCard key={n.name} node={n} isAdmin={isAdmin} canLabel={canLabel} canAudit={canChange(me, n)} />
            ))}
        </div>
      )}
      {enrolling && <EnrollDialog onClose={() => setEnrolling(false)} />}
    </>
  );
}

function NodeCard({ node: n, isAdmin, canLabel, canAudit }: { node: NodeView; isAdmin: boolean; canLabel: boolean; canAudit: boolean }): JSX.Element {
  const enc = encodeURIComponent(n.name);
  const [editingLabels, setEditingLabels] = useState(false);
  const usable = n.status === 'online' || n.status === 'offline';
  const act = async (action: 'approve' | 'rotate' | 'revoke'): Promise<void> => {
    await post(apiNodePath(n.name, `/${action}`));
    toast.success(action === 'approve' ? `${n.name} approved` : action === 'rotate' ? `${n.name}: new agent key in use; the old one no longer works` : `${n.name} revoked`);
  };
  const askRevoke = () =>
    confirmAction({
      title: `Revoke ${n.name}?`,
      body: <p>The agent's connection is cut at once and its key never works again. To manage this host again you will have to enroll it anew.</p>,
      confirmLabel: 'Revoke',
      danger: true,
    });
  const titleId = `node-${n.name}`;
  return (
    <article class={`card node-card status-${n.status}`} aria-labelledby={titleId}>
      <div class="node-card-head">
        <div>
          <h2 id={titleId} class="node-name">
            {n.name}
          </h2>
          <div class="muted small">{n.host ? n.host.hostname : 'no host facts yet'}</div>
        </div>
        <StatusBadge status={n.status} />
      </div>
      <dl class="node-facts">
        <div>
          <dt>Engine</dt>
          <dd>
            {n.engine.version ? `Docker ${n.engine.version}` : '—'} {n.engine.state !== 'up' && <StatusBadge status={n.engine.state} {...(n.engine.error ? { title: n.engine.error } : {})} />}
            {n.engine.error && <div class="small bad-text">{n.engine.error}</div>}
          </dd>
        </div>
        <div>
          <dt>Agent</dt>
          <dd>{n.agentVersion ?? '—'}</dd>
        </div>
        <div>
          <dt>Host</dt>
          <dd>{n.host ? `${n.host.os}/${n.host.arch} · ${n.host.cpus} CPU · ${bytes(n.host.memoryBytes)}` : '—'}</dd>
        </div>
        {n.status === 'online' && (
          <div>
            <dt>In use now</dt>
            <dd>
              <HostUse node={n.name} />
            </dd>
          </div>
        )}
        <div>
          <dt>Last seen</dt>
          <dd title={n.lastSeen ? dateTime(n.lastSeen) : undefined}>{n.status === 'online' ? 'now' : n.lastSeen ? ago(n.lastSeen) : 'never'}</dd>
        </div>
        <div>
          <dt>Policy</dt>
          <dd>
            <PolicyFacts node={n} />
          </dd>
        </div>
        {canAudit && (n.status === 'online' || n.status === 'offline') && (
          <div>
            <dt>Host log</dt>
            <dd>
              <HostLogAgreement node={n} />
            </dd>
          </div>
        )}
        <div>
          <dt>Labels</dt>
          <dd class="labels-dd">
            <LabelChips labels={n.labels} />
            {n.status !== 'revoked' &&
              (canLabel ? (
                <button type="button" class={buttonClass('link', true)} onClick={() => setEditingLabels(true)}>
                  Edit labels<span class="sr-only"> of {n.name}</span>
                </button>
              ) : (
                <button type="button" class={buttonClass('link', true)} disabled title="Editing labels needs the operator or admin role across the fleet">
                  Edit labels<span class="sr-only"> of {n.name} (needs the operator or admin role across the fleet)</span>
                </button>
              ))}
          </dd>
        </div>
      </dl>
      {editingLabels && <LabelsDialog node={n.name} labels={n.labels ?? {}} onClose={() => setEditingLabels(false)} />}
      <ul class="node-counts" aria-label="Inventory">
        <li>
          <a href={`/containers?node=${enc}`}>
            <strong>
              {n.counts.running}
              <span class="of">/{n.counts.containers}</span>
            </strong>{' '}
            <span>running</span>
          </a>
        </li>
        <li>
          <a href={`/nodes/${enc}/images`}>
            <strong>{n.counts.images}</strong> <span>images</span>
          </a>
        </li>
        <li>
          <a href={`/nodes/${enc}/volumes`}>
            <strong>{n.counts.volumes}</strong> <span>volumes</span>
          </a>
        </li>
        <li>
          <a href={`/nodes/${enc}/networks`}>
            <strong>{n.counts.networks}</strong> <span>networks</span>
          </a>
        </li>
      </ul>
      {isAdmin && n.status !== 'revoked' && (
        <div class="card-actions">
          {n.status === 'pending' && (
            <ActionButton variant="primary" small what={`Approve ${n.name}`} onClick={() => act('approve')}>
              Approve
            </ActionButton>
          )}
          {usable && (
            <ActionButton small what={`Rotate ${n.name}`} onClick={() => act('rotate')} title="Give the agent a new key; the old key stops working">
              Rotate key
            </ActionButton>
          )}
          <ActionButton small variant="danger" what={`Revoke ${n.name}`} confirm={askRevoke} onClick={() => act('revoke')}>
            Revoke
          </ActionButton>
        </div>
      )}
    </article>
  );
}

/** What the host's own policy allows, as its agent last reported it. */
function PolicyFacts({ node }: { node: NodeView }): JSX.Element {
  const overview = policyOverview(node);
  if (!overview) return <span class="muted">not reported yet</span>;
  const extras = policyExtras(node);
  return (
    <div class="policy-facts">
      <p class="policy-line">This host allows: {overview.allows.join(', ') || 'nothing'}.</p>
      {overview.refuses.length > 0 && <p class="policy-line muted small">Refuses: {overview.refuses.join(', ')}.</p>}
      {extras.length > 0 && <p class="policy-line muted small">Containers: {extras.join('; ')}.</p>}
      {!node.policy?.custom && <p class="policy-line muted small">The agent's default policy (no policy file).</p>}
    </div>
  );
}
