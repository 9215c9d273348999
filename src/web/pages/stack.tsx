/** One stack: each node's revision and state with its drift, the revision history with a diff
 * between any two revisions, rollback to a chosen revision, removal, recent rollouts. Rollback
 * and removal are signed by this browser's key where a node requires signed intent, and
 * disabled with the reason where this browser cannot sign for one of the stack's nodes. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { confirmAction } from '../components/dialog.tsx';
import { JobProgress } from '../components/job-progress.tsx';
import { RevisionDiff } from '../components/revision-diff.tsx';
import { StateBadge } from '../components/state-badge.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, PageHeader, buttonClass, useAsync } from '../components/ui.tsx';
import { get } from '../lib/api.ts';
import { ago, dateTime } from '../lib/format.ts';
import { useSigningBlocks } from '../lib/signing.ts';
import { removeStack, rollbackStack } from '../lib/stack-api.ts';
import type { Me, RevisionSummary, RolloutStarted, StackDetail, StackTargetSpec } from '../lib/types.ts';
import { SigningNeeded } from './containers.tsx';
import { VIEWER_REASON, canChangeStacks } from './stacks.tsx';

const REFRESH_MS = 2000;

export function targetText(t: StackTargetSpec): string {
  if ('node' in t) return t.node;
  if ('nodes' in t) return t.nodes.join(', ');
  return `label ${t.selector.key}=${t.selector.value}`;
}

export function StackPage({ me, name }: { me: Me; name: string }): JSX.Element {
  const enc = encodeURIComponent(name);
  const stack = useAsync((signal) => get<StackDetail>(`/api/v1/stacks/${enc}`, { signal }), [name]);
  const history = useAsync((signal) => get<RevisionSummary[]>(`/api/v1/stacks/${enc}/history`, { signal }), [name]);
  const [active, setActive] = useState<RolloutStarted | null>(null);
  useEffect(() => {
    const t = setInterval(() => {
      stack.reload();
      history.reload();
    }, REFRESH_MS);
    return () => clearInterval(t);
  }, [name]);
  const can = canChangeStacks(me);
  // Its nodes' jobs need this browser's signature where a node requires signed intent.
  const unsignable = [...useSigningBlocks(stack.data?.nodes.map((n) => n.node) ?? []).values()];
  const blocked = unsignable[0];
  const why = !can ? VIEWER_REASON : blocked;

  const rollback = async (to: number): Promise<void> => {
    const r = await rollbackStack(name, to);
    toast.success(`${name}: rolling back to revision ${to}`);
    setActive(r);
    stack.reload();
  };
  const askRollback = (to: number) => () =>
    confirmAction({
      title: `Roll ${name} back to revision ${to}?`,
      body: <p>Every node holding the stack gets a rollback job, in waves. Each node puts revision {to} back whole and waits for its health gate.</p>,
      confirmLabel: `Roll back to ${to}`,
      danger: true,
    });
  const remove = async (): Promise<void> => {
    const r = await removeStack(name);
    toast.success(`${name}: removal started`);
    setActive(r);
    stack.reload();
  };
  const askRemove = () =>
    confirmAction({
      title: `Remove ${name}?`,
      body: <p>Its containers and networks are removed from every node that holds it. Named volumes stay. The revision history is kept.</p>,
      confirmLabel: 'Remove stack',
      danger: true,
      typeToConfirm: name,
    });

  return (
    <AsyncView state={stack} loadingLabel={`Loading ${name}…`} errorTitle={`Could not load ${name}`}>
      {(s) => (
        <>
          <PageHeader
            title={
              <>
                {s.name} {s.drifted && <StateBadge state="drifted" />}
              </>
            }
            sub={
              <>
                Revision {s.revision}
                {s.createdAt ? ` · created ${ago(s.createdAt)}` : ''}
                {s.removedAt ? ` · removed ${ago(s.removedAt)}` : ''} · <a href={`/jobs?stack=${enc}`}>Job history</a>
              </>
            }
          >
            {can ? (
              <a class={buttonClass('primary')} href={`/stacks/deploy?stack=${enc}`}>
                Deploy a new revision
              </a>
            ) : (
              <button type="button" class={buttonClass('primary')} disabled title={VIEWER_REASON}>
                Deploy a new revision
              </button>
            )}
            <ActionButton variant="danger" what={`Remove ${name}`} confirm={askRemove} onClick={remove} disabled={why !== undefined} title={why}>
              Remove
            </ActionButton>
          </PageHeader>
          {!can && (
            <p class="notice" role="note">
              {VIEWER_REASON}
            </p>
          )}
          {can && unsignable.map((reason) => <SigningNeeded key={reason} reason={reason} />)}
          {active && (
            <section class="card" aria-label="Latest action">
              {active.jobs.length === 0 ? <p>Nothing to do: no node held the stack.</p> : active.jobs.map((id) => <JobProgress key={id} id={id} heading="h3" />)}
              <button type="button" class={buttonClass('ghost', true)} onClick={() => setActive(null)}>
                Hide
              </button>
            </section>
          )}
          <h2 class="section-title">Nodes</h2>
          {s.nodes.length === 0 ? (
            <p class="muted">The stack is on no node.</p>
          ) : (
            <div class="table-wrap">
              <table class="table responsive">
                <caption class="sr-only">Each node's revision and state</caption>
                <thead>
                  <tr>
                    <th scope="col">Node</th>
                    <th scope="col">Revision</th>
                    <th scope="col">State</th>
                    <th scope="col">Updated</th>
                    <th scope="col">Drift</th>
                  </tr>
                </thead>
                <tbody>
                  {s.nodes.map((n) => (
                    <tr key={n.node}>
                      <td data-label="Node">
                        <a href={`/jobs?node=${encodeURIComponent(n.node)}&stack=${enc}`}>{n.node}</a>
                      </td>
                      <td data-label="Revision">{n.revision}</td>
                      <td data-label="State">
                        <StateBadge state={n.status} />
                      </td>
                      <td data-label="Updated" title={dateTime(n.updatedAt)}>
                        {ago(n.updatedAt)}
                      </td>
                      <td data-label="Drift">
                        {n.drift.length === 0 ? (
                          <span class="muted">none</span>
                        ) : (
                          <ul class="drift-list" aria-label={`Drift on ${n.node}`}>
                            {n.drift.map((d, i) => (
                              <li key={i}>
                                <span class="badge badge-warn">{d.kind}</span> {d.service ?? d.container ?? ''} <span class="muted small">{d.detail}</span>
                              </li>
                            ))}
                          </ul>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {s.drifted && <p class="muted small table-note">A deploy reconciles drift: deploy the stack again to put every node back on its revision.</p>}
            </div>
          )}
          <h2 class="section-title">Revisions</h2>
          <AsyncView state={history} loadingLabel="Loading revisions…" errorTitle="Could not load the revisions">
            {(revs) => (
              <>
                <div class="table-wrap">
                  <table class="table responsive">
                    <caption class="sr-only">Revisions, newest first</caption>
                    <thead>
                      <tr>
                        <th scope="col">Revision</th>
                        <th scope="col">Created</th>
                        <th scope="col">Services</th>
                        <th scope="col">Target</th>
                        <th scope="col">
                          <span class="sr-only">Actions</span>
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {revs.map((r) => (
                        <tr key={r.revision}>
                          <td data-label="Revision">
                            <strong>{r.revision}</strong>
                            {r.revision === s.revision && <span class="badge badge-info">current</span>}
                          </td>
                          <td data-label="Created" title={dateTime(r.createdAt)}>
                            {ago(r.createdAt)} by {r.createdBy}
                          </td>
                          <td data-label="Services">
                            {r.services.join(', ')}
                            {r.secretEnv.length > 0 && <div class="muted small">secrets: {r.secretEnv.join(', ')}</div>}
                          </td>
                          <td data-label="Target">
                            {targetText(r.target)}
                            {r.parallel > 1 ? ` · ${r.parallel} at a time` : ''}
                          </td>
                          <td class="row-actions">
                            {r.revision !== s.revision && (
                              <ActionButton
                                small
                                what={`Roll back to ${r.revision}`}
                                confirm={askRollback(r.revision)}
                                onClick={() => rollback(r.revision)}
                                disabled={why !== undefined || s.nodes.length === 0}
                                title={why ?? (s.nodes.length === 0 ? 'the stack is on no node' : undefined)}
                              >
                                Roll back to {r.revision}
                              </ActionButton>
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
                {revs.length >= 2 && <RevisionDiff stack={name} revisions={revs.map((r) => r.revision)} />}
              </>
            )}
          </AsyncView>
          {s.rollouts.length > 0 && (
            <>
              <h2 class="section-title">Recent rollouts</h2>
              <ul class="rollouts">
                {s.rollouts.map((r) => (
                  <li key={r.id}>
                    <StateBadge state={r.state} /> {r.kind} to revision {r.revision} on {r.nodes.join(', ') || 'no node'}
                    <span class="muted small">
                      {' '}
                      · {ago(r.createdAt)} by {r.createdBy}
                    </span>
                    {r.error && (
                      <div class="bad-text small">
                        {r.stoppedAtNode ? `stopped at ${r.stoppedAtNode}: ` : ''}
                        {r.error}
                      </div>
                    )}
                    {r.jobs.length > 0 && (
                      <div class="small">
                        Jobs:{' '}
                        {r.jobs.map((j, i) => (
                          <span key={j}>
                            {i > 0 && ', '}
                            <a class="mono" href={`/jobs/${encodeURIComponent(j)}`}>
                              {j}
                            </a>
                          </span>
                        ))}
                      </div>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </AsyncView>
  );
}
