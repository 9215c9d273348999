/** Every container of the fleet in one table, live from the stream, with filters and actions. */
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { confirmAction } from '../components/dialog.tsx';
import { Icon } from '../components/icons.tsx';
import { PruneDialog } from '../components/prune.tsx';
import { Sparkline } from '../components/sparkline.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, Empty, ErrorState, Loading, PageHeader, StatusBadge, buttonClass, useTicker } from '../components/ui.tsx';
import { canChange } from '../lib/access.ts';
import { containerAction, removeContainer, type ContainerAction } from '../lib/actions.ts';
import { ago, dateTime, labelMatches, ports, shortId, stateDetail } from '../lib/format.ts';
import { fleet, fleetContainers } from '../lib/live.ts';
import { setQuery, useLocation } from '../lib/router.ts';
import { useSigningBlock } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';
import type { FleetContainer, Me } from '../lib/types.ts';

const PAGE_ROWS = 100;

const STATES = ['running', 'exited', 'paused', 'restarting', 'created', 'dead', 'removing'];

type SortKey = 'name' | 'node' | 'image' | 'state' | 'created';

function containerPath(c: { node: string; Id: string }, tab = ''): string {
  return `/containers/${encodeURIComponent(c.node)}/${encodeURIComponent(c.Id)}${tab ? `/${tab}` : ''}`;
}

export function ContainerActions({ c, canWrite, compact }: { c: { node: string; Id: string; name: string; State: string }; canWrite: boolean; compact?: boolean }): JSX.Element | null {
  const unsignable = useSigningBlock(c.node);
  if (!canWrite) return null;
  if (unsignable) return <SigningNeeded reason={unsignable} />;
  const running = c.State === 'running' || c.State === 'restarting' || c.State === 'paused';
  const run = (action: ContainerAction) => async (): Promise<void> => {
    const done = await containerAction(c.node, c.Id, action);
    toast.success(`${c.name} ${done}`);
  };
  const askRemove = () =>
    confirmAction({
      title: `Remove ${c.name}?`,
      body: (
        <p>
          The container <strong>{c.name}</strong> on <strong>{c.node}</strong> is deleted with its writable layer. Named volumes stay.
        </p>
      ),
      confirmLabel: 'Remove',
      danger: true,
      checkbox: { label: 'Force: stop it first if it is running', checked: running },
    });
  const remove = async (ok: { checked: boolean }): Promise<void> => {
    await removeContainer(c.node, c.Id, ok.checked);
    toast.success(`${c.name} removed`);
  };
  return (
    <div class={`row-actions${compact ? ' compact' : ''}`}>
      {running ? (
        <>
          <ActionButton small what={`Stop ${c.name}`} aria-label={`Stop ${c.name}`} onClick={run('stop')}>
            Stop
          </ActionButton>
          <ActionButton small what={`Restart ${c.name}`} aria-label={`Restart ${c.name}`} onClick={run('restart')}>
            Restart
          </ActionButton>
        </>
      ) : (
        <ActionButton small what={`Start ${c.name}`} aria-label={`Start ${c.name}`} onClick={run('start')}>
          Start
        </ActionButton>
      )}
      <ActionButton small variant="danger" what={`Remove ${c.name}`} aria-label={`Remove ${c.name}`} confirm={askRemove} onClick={remove}>
        Remove
      </ActionButton>
    </div>
  );
}

/** In place of actions a signed host would refuse: why, and where to fix it. */
export function SigningNeeded({ reason }: { reason: string }): JSX.Element {
  return (
    <p class="signing-needed small" role="note">
      {reason} <a href="/account#signing-keys">Signing keys</a>
    </p>
  );
}

/** The state a container had when its node was last heard from: grey, never a live green. */
function LastKnownState({ state, status, since }: { state: string; status: string; since: string | null }): JSX.Element {
  const when = since ? `${status} since ${dateTime(since)}` : status;
  return (
    <span class="last-known" title={since ? `last heard from ${dateTime(since)}` : undefined}>
      <span class="badge badge-stale">
        <span class="dot" aria-hidden="true" />
        last seen {state}
      </span>
      <span class="muted small"> · node {when}</span>
    </span>
  );
}

export function ContainersPage({ me }: { me: Me }): JSX.Element {
  const f = useStore(fleet);
  const loc = useLocation();
  useTicker(30_000);
  const [pruning, setPruning] = useState(false);
  const q = loc.query;
  const filters = {
    node: q.get('node') ?? '',
    state: q.get('state') ?? '',
    name: q.get('name') ?? '',
    image: q.get('image') ?? '',
    label: q.get('label') ?? '',
  };
  const sort = (q.get('sort') ?? 'node') as SortKey;
  const desc = q.get('dir') === 'desc';

  const all = useMemo(() => fleetContainers(f), [f.containers]);
  const nodeNames = useMemo(() => (f.nodes ?? []).map((n) => n.name).sort(), [f.nodes]);
  const nodeStatus = useMemo(() => new Map((f.nodes ?? []).map((n) => [n.name, n.status])), [f.nodes]);
  const nodeSeen = useMemo(() => new Map((f.nodes ?? []).map((n) => [n.name, n.lastSeen])), [f.nodes]);
  // Per node, from the global role and the user's grants (a customer's operator grant, a viewer's grant on one node).
  const writable = useMemo(() => new Set((f.nodes ?? []).filter((n) => canChange(me, n)).map((n) => n.name)), [f.nodes, me]);
  const canWrite = writable.size > 0;

  const shown = useMemo(() => {
    const name = filters.name.toLowerCase();
    const image = filters.image.toLowerCase();
    const list = all.filter(
      (c) =>
        (!filters.node || c.node === filters.node) &&
        (!filters.state || c.State === filters.state) &&
        (!name || c.name.toLowerCase().includes(name) || c.Id.startsWith(name)) &&
        (!image || c.Image.toLowerCase().includes(image)) &&
        labelMatches(c.Labels, filters.label),
    );
    const key = (c: FleetContainer): string | number =>
      sort === 'created' ? c.Created : sort === 'state' ? c.State : sort === 'image' ? c.Image : sort === 'name' ? c.name : `${c.node}\u0000${c.name}`;
    list.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return desc ? -r : r;
    });
    return list;
  }, [all, filters.node, filters.state, filters.name, filters.image, filters.label, sort, desc]);

  const running = all.filter((c) => c.State === 'running').length;
  // A page of rows at a time: thousands of rows would make every live update re-render them all.
  const [limit, setLimit] = useState(PAGE_ROWS);
  const visible = shown.length > limit ? shown.slice(0, limit) : shown;
  const anyFilter = Object.values(filters).some(Boolean);
  const loading = f.nodes === null || (all.length === 0 && f.containers.size === 0 && (f.nodes?.some((n) => n.status === 'online') ?? false));

  // A plain function, not a component: a component defined here would remount on every render.
  const sortHeader = (k: SortKey, label: string, wide = false): JSX.Element => {
    const active = sort === k;
    return (
      <th key={k} scope="col" class={wide ? 'col-wide' : undefined} aria-sort={active ? (desc ? 'descending' : 'ascending') : undefined}>
        <button type="button" class="th-sort" onClick={() => setQuery({ sort: k === 'node' ? null : k, dir: active && !desc ? 'desc' : null })}>
          {label}
          <span class="sort-mark" aria-hidden="true">
            {active ? (desc ? '▾' : '▴') : ''}
          </span>
        </button>
      </th>
    );
  };

  return (
    <>
      <PageHeader title="Containers" sub={f.nodes ? `${all.length} on ${nodeNames.length} ${nodeNames.length === 1 ? 'node' : 'nodes'}, ${running} running` : undefined}>
        {canWrite && nodeNames.length > 0 && (
          <button type="button" class={buttonClass('default')} onClick={() => setPruning(true)}>
            Prune stopped…
          </button>
        )}
      </PageHeader>

      <form class="filters" role="search" aria-label="Filter containers" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="f-node">Node</label>
          <select id="f-node" value={filters.node} onChange={(e) => setQuery({ node: e.currentTarget.value })}>
            <option value="">All nodes</option>
            {nodeNames.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
            {filters.node && !nodeNames.includes(filters.node) && <option value={filters.node}>{filters.node}</option>}
          </select>
        </div>
        <div class="field">
          <label for="f-state">State</label>
          <select id="f-state" value={filters.state} onChange={(e) => setQuery({ state: e.currentTarget.value })}>
            <option value="">Any state</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-name">Name</label>
          <input id="f-name" type="search" value={filters.name} placeholder="web" autocomplete="off" onInput={(e) => setQuery({ name: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="f-image">Image</label>
          <input id="f-image" type="search" value={filters.image} placeholder="nginx" autocomplete="off" onInput={(e) => setQuery({ image: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="f-label">Label</label>
          <input id="f-label" type="search" value={filters.label} placeholder="key or key=value" autocomplete="off" onInput={(e) => setQuery({ label: e.currentTarget.value })} />
        </div>
        {anyFilter && (
          <button type="button" class={buttonClass('ghost', true, 'filters-clear')} onClick={() => setQuery({ node: null, state: null, name: null, image: null, label: null })}>
            Clear filters
          </button>
        )}
      </form>

      {f.nodes === null && f.error ? (
        <ErrorState error={f.error} title="Could not load containers" />
      ) : loading ? (
        <Loading label="Loading containers…" />
      ) : all.length === 0 ? (
        <Empty title="No containers yet">
          <p>
            {nodeNames.length === 0
              ? 'Enroll a node first: its containers show up here.'
              : 'None of your nodes runs a container. Start one with the docker CLI through the hub (dockfleet docker-env NODE).'}
          </p>
        </Empty>
      ) : shown.length === 0 ? (
        <Empty title="No containers match these filters">
          <button type="button" class={buttonClass('default')} onClick={() => setQuery({ node: null, state: null, name: null, image: null, label: null })}>
            Clear filters
          </button>
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="table responsive containers-table">
            <caption class="sr-only">Containers{anyFilter ? ` (filtered: ${shown.length} of ${all.length})` : ''}</caption>
            <thead>
              <tr>
                {sortHeader('name', 'Name')}
                {sortHeader('node', 'Node')}
                {sortHeader('image', 'Image')}
                {sortHeader('state', 'State')}
                <th scope="col">CPU</th>
                {sortHeader('created', 'Created', true)}
                <th scope="col">Ports</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {visible.map((c) => {
                const offline = nodeStatus.get(c.node) !== 'online';
                const p = ports(c.Ports);
                return (
                  <tr key={`${c.node}/${c.Id}`} class={offline ? 'row-stale' : ''}>
                    <td data-label="Name" class="cell-name">
                      <a href={containerPath(c)} class="strong-link">
                        {c.name}
                      </a>
                      <div class="muted small mono">{shortId(c.Id)}</div>
                    </td>
                    <td data-label="Node">
                      <a
                        href={`/containers?node=${encodeURIComponent(c.node)}`}
                        onClick={(e) => {
                          e.preventDefault();
                          setQuery({ node: c.node });
                        }}
                      >
                        {c.node}
                      </a>
                      {offline && <div class="muted small">node {nodeStatus.get(c.node) ?? 'gone'}</div>}
                    </td>
                    <td data-label="Image" class="cell-image" title={c.Image}>
                      {c.Image.startsWith('sha256:') ? shortId(c.Image) : c.Image}
                    </td>
                    <td data-label="State">
                      {offline ? (
                        <LastKnownState state={c.State} status={nodeStatus.get(c.node) ?? 'gone'} since={nodeSeen.get(c.node) ?? null} />
                      ) : (
                        <>
                          <StatusBadge status={c.State} />
                          {stateDetail(c.State, c.Status) && <div class="muted small">{stateDetail(c.State, c.Status)}</div>}
                        </>
                      )}
                    </td>
                    <td data-label="CPU" class="cell-cpu">
                      {c.State === 'running' && !offline ? <Sparkline node={c.node} id={c.Id} name={c.name} /> : <span class="muted">—</span>}
                    </td>
                    <td data-label="Created" class="nowrap col-wide" title={dateTime(c.Created)}>
                      {ago(c.Created, Date.now(), true)}
                    </td>
                    <td data-label="Ports" class="cell-ports">
                      {p.length === 0 ? (
                        <span class="muted">—</span>
                      ) : (
                        p.map((s) => (
                          <span key={s} class="chip mono">
                            {s}
                          </span>
                        ))
                      )}
                    </td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <a class={buttonClass('ghost', true, 'icon-only')} href={containerPath(c, 'logs')} aria-label={`Logs of ${c.name}`} title="Logs">
                          <Icon name="logs" size={16} />
                        </a>
                        <ContainerActions c={c} canWrite={writable.has(c.node) && !offline} compact />
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {(anyFilter || visible.length < shown.length) && (
            <p class="muted small table-note">
              Showing {visible.length} of {shown.length}
              {anyFilter ? ` matching (${all.length} in all)` : ''}.{' '}
              {visible.length < shown.length && (
                <button type="button" class={buttonClass('link', true)} onClick={() => setLimit((l) => l + PAGE_ROWS)}>
                  Show {Math.min(PAGE_ROWS, shown.length - visible.length)} more
                </button>
              )}
            </p>
          )}
        </div>
      )}
      {pruning && (
        <PruneDialog
          kind="containers"
          nodes={nodeNames.filter((n) => nodeStatus.get(n) === 'online' && writable.has(n))}
          {...(filters.node ? { node: filters.node } : {})}
          onClose={() => setPruning(false)}
        />
      )}
    </>
  );
}
