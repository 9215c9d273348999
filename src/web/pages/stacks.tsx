/** Stacks: every stack with each node's revision and state; the way to deploy one. */
import type { JSX } from 'preact';
import { useEffect } from 'preact/hooks';
import { StateBadge } from '../components/state-badge.tsx';
import { Empty, ErrorState, Loading, PageHeader, buttonClass, useAsync } from '../components/ui.tsx';
import { get } from '../lib/api.ts';
import type { Me, StackListItem } from '../lib/types.ts';

const REFRESH_MS = 3000;

export function canChangeStacks(me: Me): boolean {
  return me.role === 'admin' || me.role === 'operator';
}

export const VIEWER_REASON = 'Viewers can read stacks; deploying, rolling back and removing need an operator or admin.';

export function StacksPage({ me }: { me: Me }): JSX.Element {
  const state = useAsync((signal) => get<StackListItem[]>('/api/v1/stacks', { signal }), []);
  useEffect(() => {
    const t = setInterval(state.reload, REFRESH_MS);
    return () => clearInterval(t);
  }, []);
  const can = canChangeStacks(me);
  const stacks = state.data;
  const deploy = can ? (
    <a class={buttonClass('primary')} href="/stacks/deploy">
      Deploy a stack
    </a>
  ) : (
    <span class="disabled-action">
      <button type="button" class={buttonClass('primary')} disabled aria-describedby="stacks-viewer">
        Deploy a stack
      </button>
      <span id="stacks-viewer" class="muted small">
        {VIEWER_REASON}
      </span>
    </span>
  );
  return (
    <>
      <PageHeader title="Stacks" sub={stacks ? `${stacks.length} ${stacks.length === 1 ? 'stack' : 'stacks'}` : undefined}>
        {deploy}
      </PageHeader>
      {stacks === undefined ? (
        state.error ? (
          <ErrorState error={state.error} onRetry={state.reload} title="Could not load stacks" />
        ) : (
          <Loading label="Loading stacks…" />
        )
      ) : stacks.length === 0 ? (
        <Empty title="No stacks yet">
          <p>
            A stack is a Compose file the hub keeps as the truth for one node, a list of nodes, or every node with a label. Each deploy is a revision; a deploy that fails its health gate is rolled
            back whole.
          </p>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="table responsive stacks-table">
            <caption class="sr-only">Stacks, with each node's revision and state</caption>
            <thead>
              <tr>
                <th scope="col">Stack</th>
                <th scope="col">Revision</th>
                <th scope="col">Nodes</th>
              </tr>
            </thead>
            <tbody>
              {stacks.map((s) => (
                <tr key={s.name}>
                  <td data-label="Stack">
                    <a class="strong" href={`/stacks/${encodeURIComponent(s.name)}`}>
                      {s.name}
                    </a>
                  </td>
                  <td data-label="Revision">{s.revision}</td>
                  <td data-label="Nodes">
                    {s.nodes.length === 0 ? (
                      <span class="muted">on no node</span>
                    ) : (
                      <ul class="node-states">
                        {s.nodes.map((n) => (
                          <li key={n.node}>
                            <span class="node-state-name">{n.node}</span>
                            <span class="muted small">rev {n.revision}</span>
                            <StateBadge state={n.status} />
                          </li>
                        ))}
                      </ul>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
