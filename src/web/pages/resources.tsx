/**
 * Images, volumes and networks across the fleet, one table each, like Containers: every node's
 * items with a node column, search, sort and a node filter kept in the URL. Lists come from the
 * hub's inventory (GET /api/v1/nodes/NAME/KIND), so an offline node shows what it last reported,
 * marked as such. Create volumes and networks; prune shows what it will remove first.
 * On a node that requires signed intent these calls are signed with this browser's key (lib/api.ts);
 * where this browser cannot sign for a node, its Remove is disabled with the reason, and Create and
 * Prune offer only the nodes it can sign for (disabled with the reason when there are none).
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Dialog, confirmAction } from '../components/dialog.tsx';
import { BUILTIN_NETWORKS, PruneDialog, imageLabel } from '../components/prune.tsx';
import { CreateNetworkDialog, CreateVolumeDialog } from '../components/resource-create.tsx';
import { VolumeFilesButton } from '../components/volume-files-button.tsx';
import { BackupSummary } from '../components/backup-status.tsx';
import { toast } from '../components/toasts.tsx';
import { ActionButton, AsyncView, Empty, KeyFacts, Loading, PageHeader, RawJson, buttonClass, useAsync } from '../components/ui.tsx';
import { apiNodePath, dockerPath, errorMessage, get, request } from '../lib/api.ts';
import { ago, bytes, dateTime, plural, shortId } from '../lib/format.ts';
import { containerName, fleet } from '../lib/live.ts';
import { navigate, setQuery, useLocation } from '../lib/router.ts';
import { useSigningBlocks } from '../lib/signing.ts';
import { useStore } from '../lib/store.ts';
import type { DockerContainer, DockerImage, DockerNetwork, DockerVolume, Me, NodeView } from '../lib/types.ts';
import { SigningNeeded } from './containers.tsx';

export type Kind = 'images' | 'volumes' | 'networks';
type Item = DockerImage | DockerVolume | DockerNetwork;
interface Row {
  node: string;
  key: string;
  item: Item;
  stale: boolean;
}

interface Column {
  key: string;
  label: string;
  value: (r: Row) => string | number;
}

const TITLE: Record<Kind, string> = { images: 'Images', volumes: 'Volumes', networks: 'Networks' };
const NOUN: Record<Kind, string> = { images: 'image', volumes: 'volume', networks: 'network' };

const visibleNodes = (nodes: NodeView[] | null): NodeView[] => (nodes ?? []).filter((n) => n.status !== 'pending' && n.status !== 'revoked').sort((a, b) => a.name.localeCompare(b.name));

/** Every node's last reported list of `kind`; reloads when a node's status or count changes. */
function useFleetInventory(kind: Kind, nodes: NodeView[], bump: number): { rows: Row[] | null; errors: Array<[string, string]> } {
  const stamp = nodes.map((n) => `${n.name}:${n.status}:${n.counts[kind]}`).join(',');
  const [state, setState] = useState<{ rows: Row[] | null; errors: Array<[string, string]> }>({ rows: null, errors: [] });
  useEffect(() => {
    const ctl = new AbortController();
    void Promise.all(
      nodes.map(async (n) => {
        try {
          const items = await get<Item[]>(apiNodePath(n.name, `/${kind}`), { signal: ctl.signal });
          return { rows: items.map((item) => ({ node: n.name, key: `${n.name}/${'Id' in item ? item.Id : item.Name}`, item, stale: n.status !== 'online' })) };
        } catch (err) {
          return { rows: [] as Row[], error: [n.name, errorMessage(err)] as [string, string] };
        }
      }),
    ).then((parts) => {
      if (ctl.signal.aborted) return;
      setState({ rows: parts.flatMap((p) => p.rows), errors: parts.flatMap((p) => (p.error ? [p.error] : [])) });
    });
    return () => ctl.abort();
  }, [kind, stamp, bump]);
  return state;
}

/** Per node: which containers use what (image id, volume name, network id or name). */
function usageOf(kind: Kind, containers: ReadonlyMap<string, DockerContainer[]>): Map<string, string[]> {
  const m = new Map<string, string[]>();
  const add = (k: string, who: string): void => void m.set(k, [...(m.get(k) ?? []), who]);
  for (const [node, list] of containers) {
    for (const c of list) {
      const who = containerName(c);
      if (kind === 'images' && c.ImageID) add(`${node}/${c.ImageID}`, who);
      if (kind === 'volumes') for (const mt of c.Mounts ?? []) if (mt.Type === 'volume' && mt.Name) add(`${node}/${mt.Name}`, who);
      if (kind === 'networks') {
        for (const [name, n] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
          add(`${node}/${n.NetworkID || name}`, who);
          if (n.NetworkID && n.NetworkID !== name) add(`${node}/${name}`, who);
        }
      }
    }
  }
  return m;
}

const users = (kind: Kind, usage: Map<string, string[]>, r: Row): string[] =>
  kind === 'networks' ? (usage.get(r.key) ?? usage.get(`${r.node}/${(r.item as DockerNetwork).Name}`) ?? []) : (usage.get(r.key) ?? []);

function columnsFor(kind: Kind, usage: Map<string, string[]>): Column[] {
  const used: Column = { key: 'used', label: kind === 'networks' ? 'Containers' : 'Used by', value: (r) => users(kind, usage, r).length };
  const node: Column = { key: 'node', label: 'Node', value: (r) => r.node };
  if (kind === 'images') {
    return [
      { key: 'name', label: 'Repository:tag', value: (r) => imageLabel(r.item as DockerImage) },
      node,
      { key: 'size', label: 'Size', value: (r) => (r.item as DockerImage).Size },
      { key: 'created', label: 'Created', value: (r) => (r.item as DockerImage).Created },
      used,
    ];
  }
  if (kind === 'volumes') {
    return [
      { key: 'name', label: 'Name', value: (r) => (r.item as DockerVolume).Name },
      node,
      { key: 'driver', label: 'Driver', value: (r) => (r.item as DockerVolume).Driver },
      { key: 'created', label: 'Created', value: (r) => Date.parse((r.item as DockerVolume).CreatedAt ?? '') || 0 },
      used,
      // From one read of the node's backup statuses that its rows share (last backup, last verified, the unverified warning); it links to the volume's backups page.
      { key: 'backup', label: 'Backups', value: () => '' },
    ];
  }
  return [
    { key: 'name', label: 'Name', value: (r) => (r.item as DockerNetwork).Name },
    node,
    { key: 'driver', label: 'Driver', value: (r) => (r.item as DockerNetwork).Driver },
    {
      key: 'subnet',
      label: 'Subnet',
      value: (r) =>
        ((r.item as DockerNetwork).IPAM?.Config ?? [])
          .map((c) => c.Subnet)
          .filter(Boolean)
          .join(', '),
    },
    used,
  ];
}

function searchText(kind: Kind, r: Row): string {
  const i = r.item;
  if (kind === 'images') {
    const img = i as DockerImage;
    return [img.Id, ...(img.RepoTags ?? []), ...(img.RepoDigests ?? [])].join(' ');
  }
  if (kind === 'volumes') {
    const v = i as DockerVolume;
    return [v.Name, v.Driver, ...Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`)].join(' ');
  }
  const n = i as DockerNetwork;
  return [n.Name, n.Id, n.Driver, ...(n.IPAM?.Config ?? []).map((c) => c.Subnet ?? '')].join(' ');
}

function InspectDialog({ title, path, onClose }: { title: string; path: string; onClose: () => void }): JSX.Element {
  const state = useAsync((signal) => get<Record<string, unknown>>(path, { signal }), [path]);
  return (
    <Dialog
      title={title}
      onClose={onClose}
      wide
      footer={
        <button type="button" class={buttonClass('primary')} onClick={onClose}>
          Close
        </button>
      }
    >
      <AsyncView state={state} loadingLabel="Inspecting…">
        {(d) => (
          <>
            <KeyFacts
              items={[
                ['ID', <code class="break">{String(d.Id ?? d.Name ?? '')}</code>],
                ['Created', dateTime((d.Created ?? d.CreatedAt) as string)],
              ]}
            />
            <RawJson value={d} />
          </>
        )}
      </AsyncView>
    </Dialog>
  );
}

function nameCell(kind: Kind, r: Row): ComponentChildren {
  if (kind === 'images') {
    const tags = ((r.item as DockerImage).RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    return (
      <>
        {tags.length ? (
          tags.map((t) => (
            <div key={t} class="break strong">
              {t}
            </div>
          ))
        ) : (
          <span class="muted">&lt;none&gt;</span>
        )}
        <div class="muted small mono">{shortId((r.item as DockerImage).Id)}</div>
      </>
    );
  }
  if (kind === 'volumes') {
    const v = r.item as DockerVolume;
    return (
      <>
        <span class="strong break">{v.Name}</span>
        {v.Labels?.['com.docker.compose.project'] && <div class="muted small">compose: {v.Labels['com.docker.compose.project']}</div>}
      </>
    );
  }
  const n = r.item as DockerNetwork;
  return (
    <>
      <span class="strong">{n.Name}</span>
      {BUILTIN_NETWORKS.has(n.Name) && <span class="chip">built-in</span>}
      {n.Internal && <span class="chip">internal</span>}
    </>
  );
}

/** Why a row of an offline node cannot be acted on (its engine is out of reach). */
const staleReason = (node: string): string => `${node} is offline: this is its last known list, actions wait until it is back`;

/** A row action that cannot run now, disabled with its reason (hover title and accessible name). */
function UnavailableAction({ label, what, reason }: { label: string; what: string; reason: string }): JSX.Element {
  return (
    <button type="button" class={buttonClass('ghost', true)} disabled title={reason} aria-label={`${what}: ${reason}`}>
      {label}
    </button>
  );
}

/** Over the table: which nodes' items are last known, and since when. */
function StaleNotes({ kind, nodes }: { kind: Kind; nodes: NodeView[] }): JSX.Element {
  return (
    <>
      {nodes.map((n) => (
        <p key={n.name} class="muted small stale-note" role="note">
          <span class="badge badge-stale">last known</span> {n.name} is {n.status}: its {kind} are shown as it last reported them
          {n.lastSeen ? (
            <>
              {' '}
              (<span title={dateTime(n.lastSeen)}>{ago(n.lastSeen)}</span>)
            </>
          ) : null}
          ; changes wait until it is back.
        </p>
      ))}
    </>
  );
}

function cell(kind: Kind, col: Column, r: Row, usage: Map<string, string[]>): ComponentChildren {
  if (col.key === 'name') return nameCell(kind, r);
  if (col.key === 'node')
    return (
      <>
        {r.node}
        {r.stale && (
          <div>
            <span class="badge badge-stale">last known</span>
          </div>
        )}
      </>
    );
  if (col.key === 'size') return bytes((r.item as DockerImage).Size);
  if (col.key === 'created') {
    const t = kind === 'images' ? (r.item as DockerImage).Created : ((r.item as DockerVolume).CreatedAt ?? null);
    return <span title={dateTime(t)}>{ago(t)}</span>;
  }
  if (col.key === 'backup') return <BackupSummary node={r.node} volume={(r.item as DockerVolume).Name} />;
  if (col.key === 'used') {
    const u = users(kind, usage, r);
    return u.length ? <span title={u.join(', ')}>{kind === 'volumes' ? u.join(', ') : plural(u.length, 'container')}</span> : <span class="muted">unused</span>;
  }
  return String(col.value(r)) || '—';
}

export function FleetResources({ me, kind }: { me: Me; kind: Kind }): JSX.Element {
  const f = useStore(fleet);
  const loc = useLocation();
  const q = loc.query;
  const nodeFilter = q.get('node') ?? '';
  const search = q.get('q') ?? '';
  const sort = q.get('sort') ?? 'node';
  const desc = q.get('dir') === 'desc';
  const [bump, setBump] = useState(0);
  const [dialog, setDialog] = useState<'prune' | 'create' | null>(null);
  const [inspecting, setInspecting] = useState<Row | null>(null);
  const nodes = useMemo(() => visibleNodes(f.nodes), [f.nodes]);
  const reachable = nodes.filter((n) => n.status === 'online').map((n) => n.name);
  // Nodes whose host would refuse this browser's unsigned (or wrongly signed) changes.
  const unsignable = useSigningBlocks(nodes.map((n) => n.name));
  const online = reachable.filter((n) => !unsignable.has(n));
  const noneSignable = reachable.length > 0 && online.length === 0 ? unsignable.get(reachable[0]!) : undefined;
  const { rows, errors } = useFleetInventory(kind, nodes, bump);
  const usage = useMemo(() => usageOf(kind, f.containers), [kind, f.containers]);
  const columns = useMemo(() => columnsFor(kind, usage), [kind, usage]);
  const canWrite = me.role !== 'viewer';
  const title = TITLE[kind];
  useEffect(() => {
    document.title = `${title} · dockfleet`;
  }, [title]);

  const shown = useMemo(() => {
    const needle = search.trim().toLowerCase();
    const list = (rows ?? []).filter((r) => (!nodeFilter || r.node === nodeFilter) && (!needle || searchText(kind, r).toLowerCase().includes(needle)));
    const col = columns.find((c) => c.key === sort) ?? columns[1]!;
    const name = columns[0]!;
    list.sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      const r = (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) || String(name.value(a)).localeCompare(String(name.value(b)));
      return desc ? -r : r;
    });
    return list;
  }, [rows, nodeFilter, search, sort, desc, columns, kind]);

  const reload = (): void => setBump((b) => b + 1);
  const remove =
    (r: Row) =>
    async (ok: { checked: boolean }): Promise<void> => {
      const id = kind === 'volumes' ? (r.item as DockerVolume).Name : (r.item as DockerImage | DockerNetwork).Id;
      await request('DELETE', dockerPath(r.node, `/${kind}/${encodeURIComponent(id)}${ok.checked ? '?force=1' : ''}`));
      toast.success(`${NOUN[kind]} ${String(columns[0]!.value(r))} removed from ${r.node}`);
      reload();
    };
  const askRemove = (r: Row) => () =>
    confirmAction({
      title: `Remove this ${NOUN[kind]}?`,
      body: (
        <p>
          The {NOUN[kind]} <strong class="break">{String(columns[0]!.value(r))}</strong> is deleted from <strong>{r.node}</strong>
          {kind === 'volumes' ? ' with all its data' : ''}. {users(kind, usage, r).length > 0 ? 'Containers use it: Docker may refuse.' : ''}
        </p>
      ),
      confirmLabel: 'Remove',
      danger: true,
      ...(kind === 'networks' ? {} : { checkbox: { label: 'Force', checked: false } }),
    });

  const sortHeader = (c: Column): JSX.Element => {
    const active = sort === c.key;
    return (
      <th key={c.key} scope="col" aria-sort={active ? (desc ? 'descending' : 'ascending') : undefined}>
        <button type="button" class="th-sort" onClick={() => setQuery({ sort: c.key === 'node' ? null : c.key, dir: active && !desc ? 'desc' : null })}>
          {c.label}
          <span class="sort-mark" aria-hidden="true">
            {active ? (desc ? '▾' : '▴') : ''}
          </span>
        </button>
      </th>
    );
  };
  const anyFilter = Boolean(nodeFilter || search);
  const inspectPath = (r: Row): string =>
    dockerPath(
      r.node,
      kind === 'images'
        ? `/images/${encodeURIComponent((r.item as DockerImage).Id)}/json`
        : kind === 'volumes'
          ? `/volumes/${encodeURIComponent((r.item as DockerVolume).Name)}`
          : `/networks/${encodeURIComponent((r.item as DockerNetwork).Id)}`,
    );

  return (
    <>
      <PageHeader title={title} sub={rows ? `${plural(rows.length, NOUN[kind])} on ${plural(nodes.length, 'node')}` : undefined}>
        {canWrite && kind !== 'images' && reachable.length > 0 && (
          <button type="button" class={buttonClass('primary')} onClick={() => setDialog('create')} disabled={noneSignable !== undefined} title={noneSignable}>
            Create {NOUN[kind]}…
          </button>
        )}
        {canWrite && reachable.length > 0 && (
          <button type="button" class={buttonClass('default')} onClick={() => setDialog('prune')} disabled={noneSignable !== undefined} title={noneSignable}>
            Prune…
          </button>
        )}
      </PageHeader>
      {canWrite &&
        [...unsignable]
          .filter(([n]) => reachable.includes(n) && (!nodeFilter || n === nodeFilter))
          .map(([n, reason]) => <SigningNeeded key={n} reason={`${reason} Its ${kind} can be read here but not changed.`} />)}

      <form class="filters" role="search" aria-label={`Filter ${kind}`} onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="r-node">Node</label>
          <select id="r-node" value={nodeFilter} onChange={(e) => setQuery({ node: e.currentTarget.value })}>
            <option value="">All nodes</option>
            {nodes.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name}
                {n.status !== 'online' ? ` (${n.status})` : ''}
              </option>
            ))}
            {nodeFilter && !nodes.some((n) => n.name === nodeFilter) && <option value={nodeFilter}>{nodeFilter}</option>}
          </select>
        </div>
        <div class="field">
          <label for="r-search">Search</label>
          <input id="r-search" type="search" value={search} autocomplete="off" placeholder={kind === 'images' ? 'nginx' : 'name'} onInput={(e) => setQuery({ q: e.currentTarget.value })} />
        </div>
        {anyFilter && (
          <button type="button" class={buttonClass('ghost', true, 'filters-clear')} onClick={() => setQuery({ node: null, q: null })}>
            Clear filters
          </button>
        )}
      </form>

      {errors.map(([n, e]) => (
        <p key={n} class="warn-text small">
          Could not read {kind} of {n}: {e}
        </p>
      ))}
      <StaleNotes kind={kind} nodes={nodes.filter((n) => n.status !== 'online' && (!nodeFilter || n.name === nodeFilter))} />
      {f.nodes === null || rows === null ? (
        <Loading label={`Loading ${kind}…`} />
      ) : nodes.length === 0 ? (
        <Empty title="No node to show">
          <p>{title} live on nodes. Enroll a node (or approve a pending one) first.</p>
          <a class={buttonClass('primary')} href="/nodes">
            Go to nodes
          </a>
        </Empty>
      ) : shown.length === 0 ? (
        <Empty title={anyFilter ? `No ${kind} match these filters` : `No ${kind} yet`} />
      ) : (
        <div class="table-wrap">
          <table class="table responsive">
            <caption class="sr-only">
              {title}
              {anyFilter ? ` (filtered: ${shown.length} of ${rows.length})` : ''}
            </caption>
            <thead>
              <tr>
                {columns.map(sortHeader)}
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => {
                const label = String(columns[0]!.value(r));
                const builtin = kind === 'networks' && BUILTIN_NETWORKS.has((r.item as DockerNetwork).Name);
                return (
                  <tr key={r.key} class={r.stale ? 'row-stale' : ''}>
                    {columns.map((c) => (
                      <td key={c.key} data-label={c.label} class={c.key === 'name' ? 'cell-name' : c.key === 'subnet' ? 'mono' : undefined}>
                        {cell(kind, c, r, usage)}
                      </td>
                    ))}
                    <td class="cell-actions">
                      <div class="row-actions">
                        {r.stale ? (
                          <>
                            {kind === 'volumes' && <UnavailableAction label="Files" what={`Files of ${label}`} reason={staleReason(r.node)} />}
                            <UnavailableAction label="Inspect" what={`Inspect ${label} on ${r.node}`} reason={staleReason(r.node)} />
                            {canWrite && !builtin && <UnavailableAction label="Remove" what={`Remove ${label} on ${r.node}`} reason={staleReason(r.node)} />}
                          </>
                        ) : (
                          <>
                            {kind === 'volumes' && <VolumeFilesButton node={r.node} volume={(r.item as DockerVolume).Name} />}
                            <button type="button" class={buttonClass('ghost', true)} aria-label={`Inspect ${label} on ${r.node}`} onClick={() => setInspecting(r)}>
                              Inspect
                            </button>
                            {canWrite && !builtin && unsignable.has(r.node) && <UnavailableAction label="Remove" what={`Remove ${label} on ${r.node}`} reason={unsignable.get(r.node)!} />}
                            {canWrite && !builtin && !unsignable.has(r.node) && (
                              <ActionButton small variant="danger" what={`Remove ${label}`} aria-label={`Remove ${label} on ${r.node}`} confirm={askRemove(r)} onClick={remove(r)}>
                                Remove
                              </ActionButton>
                            )}
                          </>
                        )}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      {inspecting && <InspectDialog title={`${TITLE[kind].slice(0, -1)} ${String(columns[0]!.value(inspecting))}`} path={inspectPath(inspecting)} onClose={() => setInspecting(null)} />}
      {dialog === 'prune' && <PruneDialog kind={kind} nodes={online} {...(nodeFilter && online.includes(nodeFilter) ? { node: nodeFilter } : {})} onClose={() => setDialog(null)} onDone={reload} />}
      {dialog === 'create' && kind === 'volumes' && (
        <CreateVolumeDialog nodes={online} {...(nodeFilter && online.includes(nodeFilter) ? { node: nodeFilter } : {})} onClose={() => setDialog(null)} onCreated={reload} />
      )}
      {dialog === 'create' && kind === 'networks' && (
        <CreateNetworkDialog nodes={online} {...(nodeFilter && online.includes(nodeFilter) ? { node: nodeFilter } : {})} onClose={() => setDialog(null)} onCreated={reload} />
      )}
    </>
  );
}

/** /nodes/NODE/images (and volumes, networks): the fleet view filtered to that node. */
function NodeRedirect({ node, kind }: { node: string; kind: Kind }): JSX.Element {
  useEffect(() => navigate(`/${kind}?node=${encodeURIComponent(node)}`, { replace: true }), [node, kind]);
  return (
    <>
      <PageHeader title={TITLE[kind]} />
      <Loading />
    </>
  );
}

export const ImagesPage = ({ node }: { me: Me; node: string }): JSX.Element => <NodeRedirect node={node} kind="images" />;
export const VolumesPage = ({ node }: { me: Me; node: string }): JSX.Element => <NodeRedirect node={node} kind="volumes" />;
export const NetworksPage = ({ node }: { me: Me; node: string }): JSX.Element => <NodeRedirect node={node} kind="networks" />;
