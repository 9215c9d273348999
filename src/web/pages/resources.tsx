/** Images, volumes and networks of one node, through the Docker API; inspect, remove, prune. */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Dialog, confirmAction } from '../components/dialog.tsx';
import { Icon } from '../components/icons.tsx';
import { PruneDialog } from '../components/prune.tsx';
import { VolumeFilesButton } from '../components/volume-files-button.tsx';
import { toast } from '../components/toasts.tsx';
import {
  ActionButton, AsyncView, DataTable, Empty, ErrorState, KeyFacts, Loading, PageHeader, RawJson, StatusBadge, buttonClass, useAsync,
} from '../components/ui.tsx';
import type { PruneKind } from '../lib/actions.ts';
import { dockerPath, get, request } from '../lib/api.ts';
import { ago, bytes, dateTime, plural, shortId } from '../lib/format.ts';
import { containerName, fleet } from '../lib/live.ts';
import { navigate } from '../lib/router.ts';
import { useStore } from '../lib/store.ts';
import type { DockerImage, DockerNetwork, DockerVolume, Me, NodeView } from '../lib/types.ts';

type Kind = 'images' | 'volumes' | 'networks';
const LAST_NODE_KEY = 'dockfleet.lastNode';

function rememberNode(node: string): void {
  try {
    localStorage.setItem(LAST_NODE_KEY, node);
  } catch { /* private mode */ }
}

/** /images, /volumes, /networks: go to the last used (or first online) node's page. */
export function NodeResourceRedirect({ kind }: { kind: Kind }): JSX.Element {
  const f = useStore(fleet);
  const nodes = f.nodes;
  const target = useMemo(() => {
    if (!nodes || nodes.length === 0) return null;
    let last: string | null = null;
    try {
      last = localStorage.getItem(LAST_NODE_KEY);
    } catch { /* ignore */ }
    const usable = nodes.filter((n) => n.status !== 'pending' && n.status !== 'revoked');
    const pick = usable.find((n) => n.name === last) ?? usable.find((n) => n.status === 'online') ?? usable[0];
    return pick?.name ?? null;
  }, [nodes]);
  useEffect(() => {
    if (target) navigate(`/nodes/${encodeURIComponent(target)}/${kind}`, { replace: true });
  }, [target, kind]);
  const title = kind[0]!.toUpperCase() + kind.slice(1);
  useEffect(() => {
    document.title = `${title} · dockfleet`;
  }, [title]);
  if (nodes === null) return <><PageHeader title={title} /><Loading /></>;
  return (
    <>
      <PageHeader title={title} />
      {target ? <Loading /> : (
        <Empty title="No node to show">
          <p>{title} live on nodes. Enroll a node (or approve a pending one) first.</p>
          <a class={buttonClass('primary')} href="/nodes">Go to nodes</a>
        </Empty>
      )}
    </>
  );
}

function NodeSwitcher({ node, kind, nodes }: { node: string; kind: Kind; nodes: NodeView[] | null }): JSX.Element {
  const names = (nodes ?? []).filter((n) => n.status !== 'pending' && n.status !== 'revoked').map((n) => n.name).sort();
  if (!names.includes(node)) names.unshift(node);
  return (
    <div class="field field-inline">
      <label for="node-switch">Node</label>
      <select id="node-switch" value={node} onChange={(e) => navigate(`/nodes/${encodeURIComponent(e.currentTarget.value)}/${kind}`)}>
        {names.map((n) => <option key={n} value={n}>{n}{nodes?.find((x) => x.name === n)?.status === 'offline' ? ' (offline)' : ''}</option>)}
      </select>
    </div>
  );
}

function ResourcePage({ me, node, kind, count, children }: {
  me: Me;
  node: string;
  kind: Kind;
  count?: string;
  children: ComponentChildren;
}): JSX.Element {
  const f = useStore(fleet);
  const [pruning, setPruning] = useState(false);
  useEffect(() => rememberNode(node), [node]);
  const nv = f.nodes?.find((n) => n.name === node);
  const title = kind[0]!.toUpperCase() + kind.slice(1);
  return (
    <>
      <PageHeader
        title={title}
        sub={<>on <strong>{node}</strong>{nv && nv.status !== 'online' && <> · <StatusBadge status={nv.status} /></>}{count ? ` · ${count}` : ''}</>}
      >
        <NodeSwitcher node={node} kind={kind} nodes={f.nodes} />
        {me.role !== 'viewer' && (
          <button type="button" class={buttonClass('default')} onClick={() => setPruning(true)} disabled={nv?.status !== 'online'}>
            Prune…
          </button>
        )}
      </PageHeader>
      {f.nodes && !nv ? <ErrorState title="Unknown node" error={`There is no node named ${node}.`} /> : children}
      {pruning && <PruneDialog kind={kind as PruneKind} nodes={[node]} node={node} onClose={() => setPruning(false)} />}
    </>
  );
}

/** Reloads when the node's inventory count for `kind` changes (the stream keeps counts current). */
function useInventoryStamp(node: string, kind: Kind): string {
  const f = useStore(fleet);
  const n = f.nodes?.find((x) => x.name === node);
  return n ? `${n.status}|${n.counts[kind]}` : '';
}

function InspectDialog({ title, path, facts, onClose }: {
  title: string;
  path: string;
  facts: (d: Record<string, unknown>) => Array<[string, ComponentChildren] | null | false>;
  onClose: () => void;
}): JSX.Element {
  const state = useAsync((signal) => get<Record<string, unknown>>(path, { signal }), [path]);
  return (
    <Dialog title={title} onClose={onClose} wide footer={<button type="button" class={buttonClass('primary')} onClick={onClose}>Close</button>}>
      <AsyncView state={state} loadingLabel="Inspecting…">
        {(d) => (
          <>
            <KeyFacts items={facts(d)} />
            <RawJson value={d} />
          </>
        )}
      </AsyncView>
    </Dialog>
  );
}

// ---------------------------------------------------------------------------------------------
// Images

export function ImagesPage({ me, node }: { me: Me; node: string }): JSX.Element {
  const stamp = useInventoryStamp(node, 'images');
  const state = useAsync((signal) => get<DockerImage[]>(dockerPath(node, '/images/json'), { signal }), [node, stamp]);
  const f = useStore(fleet);
  const [inspecting, setInspecting] = useState<DockerImage | null>(null);
  const usage = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const c of f.containers.get(node) ?? []) {
      if (!c.ImageID) continue;
      m.set(c.ImageID, [...(m.get(c.ImageID) ?? []), containerName(c)]);
    }
    return m;
  }, [f.containers, node]);
  const canWrite = me.role !== 'viewer';
  const total = state.data?.reduce((s, i) => s + i.Size, 0) ?? 0;

  const askRemove = (img: DockerImage, label: string) => () => {
    const users = usage.get(img.Id) ?? [];
    return confirmAction({
      title: `Remove ${label}?`,
      body: (
        <>
          <p>The image <strong>{label}</strong> ({shortId(img.Id)}, {bytes(img.Size)}) is deleted from <strong>{node}</strong>.</p>
          {users.length > 0 && <p class="warn-text">Used by {plural(users.length, 'container')}: {users.join(', ')}.</p>}
        </>
      ),
      confirmLabel: 'Remove',
      danger: true,
      checkbox: { label: 'Force: also remove it when tagged more than once or used by stopped containers', checked: false },
    });
  };
  const remove = async (img: DockerImage, label: string, ok: { checked: boolean }): Promise<void> => {
    await request('DELETE', dockerPath(node, `/images/${encodeURIComponent(img.Id)}${ok.checked ? '?force=1' : ''}`));
    toast.success(`${label} removed from ${node}`);
    state.reload();
  };

  return (
    <ResourcePage me={me} node={node} kind="images" {...(state.data ? { count: `${plural(state.data.length, 'image')}, ${bytes(total)}` } : {})}>
      <AsyncView state={state} loadingLabel="Loading images…" errorTitle="Could not list images">
        {(images) =>
          images.length === 0 ? (
            <Empty title="No images on this node" />
          ) : (
            <DataTable caption={`Images on ${node}`} columns={['Repository:tag', 'ID', 'Size', 'Created', 'Used by']}>
              {[...images].sort((a, b) => b.Created - a.Created).map((img) => {
                const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
                const label = tags[0] ?? (img.RepoDigests?.[0]?.split('@')[0] ? `${img.RepoDigests[0].split('@')[0]} (untagged)` : shortId(img.Id));
                const users = usage.get(img.Id) ?? [];
                return (
                  <tr key={img.Id}>
                    <td data-label="Tags" class="cell-name">
                      {tags.length ? tags.map((t) => <div key={t} class="break strong">{t}</div>) : <span class="muted">&lt;none&gt;</span>}
                    </td>
                    <td data-label="ID" class="mono">{shortId(img.Id)}</td>
                    <td data-label="Size">{bytes(img.Size)}</td>
                    <td data-label="Created" title={dateTime(img.Created)}>{ago(img.Created)}</td>
                    <td data-label="Used by">{users.length ? <span title={users.join(', ')}>{plural(users.length, 'container')}</span> : <span class="muted">unused</span>}</td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <button type="button" class={buttonClass('ghost', true)} onClick={() => setInspecting(img)}>Inspect</button>
                        {canWrite && <ActionButton small variant="danger" what={`Remove ${label}`} confirm={askRemove(img, label)} onClick={(ok) => remove(img, label, ok)}>Remove</ActionButton>}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </DataTable>
          )
        }
      </AsyncView>
      {inspecting && (
        <InspectDialog
          title={`Image ${(inspecting.RepoTags ?? [])[0] ?? shortId(inspecting.Id)}`}
          path={dockerPath(node, `/images/${encodeURIComponent(inspecting.Id)}/json`)}
          onClose={() => setInspecting(null)}
          facts={(d) => {
            const cfg = (d.Config ?? {}) as { Cmd?: string[]; Entrypoint?: string[]; ExposedPorts?: Record<string, unknown>; WorkingDir?: string; User?: string };
            return [
              ['ID', <code class="break">{String(d.Id)}</code>],
              ['Tags', ((d.RepoTags as string[] | undefined) ?? []).join(', ') || '—'],
              ['Created', dateTime(d.Created as string)],
              ['Size', bytes(d.Size as number)],
              ['Platform', `${String(d.Os ?? '')}/${String(d.Architecture ?? '')}${d.Variant ? `/${String(d.Variant)}` : ''}`],
              ['Entrypoint', cfg.Entrypoint?.join(' ') || '—'],
              ['Command', cfg.Cmd?.join(' ') || '—'],
              ['Exposed ports', Object.keys(cfg.ExposedPorts ?? {}).join(', ') || '—'],
              cfg.WorkingDir ? ['Working dir', cfg.WorkingDir] : null,
              cfg.User ? ['User', cfg.User] : null,
            ];
          }}
        />
      )}
    </ResourcePage>
  );
}

// ---------------------------------------------------------------------------------------------
// Volumes

export function VolumesPage({ me, node }: { me: Me; node: string }): JSX.Element {
  const stamp = useInventoryStamp(node, 'volumes');
  const state = useAsync((signal) => get<{ Volumes: DockerVolume[] | null; Warnings?: string[] | null }>(dockerPath(node, '/volumes'), { signal }), [node, stamp]);
  const f = useStore(fleet);
  const [inspecting, setInspecting] = useState<string | null>(null);
  const usage = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const c of f.containers.get(node) ?? []) {
      for (const mt of c.Mounts ?? []) {
        if (mt.Type === 'volume' && mt.Name) m.set(mt.Name, [...(m.get(mt.Name) ?? []), containerName(c)]);
      }
    }
    return m;
  }, [f.containers, node]);
  const canWrite = me.role !== 'viewer';
  const volumes = state.data ? [...(state.data.Volumes ?? [])].sort((a, b) => a.Name.localeCompare(b.Name)) : undefined;

  const askRemove = (v: DockerVolume) => () => {
    const users = usage.get(v.Name) ?? [];
    return confirmAction({
      title: `Remove volume ${v.Name.length > 24 ? `${v.Name.slice(0, 12)}…` : v.Name}?`,
      body: (
        <>
          <p>The volume <strong class="break">{v.Name}</strong> and all its data are deleted from <strong>{node}</strong>. This cannot be undone.</p>
          {users.length > 0 && <p class="warn-text">Mounted by {users.join(', ')}: Docker refuses while a container uses it.</p>}
        </>
      ),
      confirmLabel: 'Remove',
      danger: true,
      checkbox: { label: 'Force', checked: false },
    });
  };
  const remove = async (v: DockerVolume, ok: { checked: boolean }): Promise<void> => {
    await request('DELETE', dockerPath(node, `/volumes/${encodeURIComponent(v.Name)}${ok.checked ? '?force=1' : ''}`));
    toast.success(`Volume ${v.Name} removed`);
    state.reload();
  };

  return (
    <ResourcePage me={me} node={node} kind="volumes" {...(volumes ? { count: plural(volumes.length, 'volume') } : {})}>
      <AsyncView state={state} loadingLabel="Loading volumes…" errorTitle="Could not list volumes">
        {() =>
          !volumes || volumes.length === 0 ? (
            <Empty title="No volumes on this node" />
          ) : (
            <DataTable caption={`Volumes on ${node}`} columns={['Name', 'Driver', 'Created', 'Used by']} after={(state.data?.Warnings ?? []).map((w) => <p key={w} class="warn-text small">{w}</p>)}>
              {volumes.map((v) => {
                const users = usage.get(v.Name) ?? [];
                const files = `/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(v.Name)}/files`;
                return (
                  <tr key={v.Name}>
                    <td data-label="Name" class="cell-name">
                      <a href={files} class="strong-link break" title="Browse files">{v.Name}</a>
                      {v.Labels?.['com.docker.compose.project'] && <div class="muted small">compose: {v.Labels['com.docker.compose.project']}</div>}
                    </td>
                    <td data-label="Driver">{v.Driver}</td>
                    <td data-label="Created" title={dateTime(v.CreatedAt ?? null)}>{ago(v.CreatedAt ?? null)}</td>
                    <td data-label="Used by">{users.length ? users.join(', ') : <span class="muted">unused</span>}</td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <VolumeFilesButton node={node} volume={v.Name} />
                        <button type="button" class={buttonClass('ghost', true)} onClick={() => setInspecting(v.Name)}>Inspect</button>
                        {canWrite && <ActionButton small variant="danger" what={`Remove ${v.Name}`} confirm={askRemove(v)} onClick={(ok) => remove(v, ok)}>Remove</ActionButton>}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </DataTable>
          )
        }
      </AsyncView>
      {inspecting && (
        <InspectDialog
          title={`Volume ${inspecting}`}
          path={dockerPath(node, `/volumes/${encodeURIComponent(inspecting)}`)}
          onClose={() => setInspecting(null)}
          facts={(d) => [
            ['Name', <span class="break">{String(d.Name)}</span>],
            ['Driver', String(d.Driver ?? '')],
            ['Mountpoint', <code class="break">{String(d.Mountpoint ?? '')}</code>],
            ['Created', dateTime(d.CreatedAt as string)],
            ['Scope', String(d.Scope ?? '')],
            ['Used by', (usage.get(inspecting) ?? []).join(', ') || 'no container'],
          ]}
        />
      )}
    </ResourcePage>
  );
}

// ---------------------------------------------------------------------------------------------
// Networks

const BUILTIN_NETWORKS = new Set(['bridge', 'host', 'none']);

export function NetworksPage({ me, node }: { me: Me; node: string }): JSX.Element {
  const stamp = useInventoryStamp(node, 'networks');
  const state = useAsync((signal) => get<DockerNetwork[]>(dockerPath(node, '/networks'), { signal }), [node, stamp]);
  const f = useStore(fleet);
  const [inspecting, setInspecting] = useState<DockerNetwork | null>(null);
  const usage = useMemo(() => {
    const m = new Map<string, string[]>();
    for (const c of f.containers.get(node) ?? []) {
      for (const [name, n] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
        const key = n.NetworkID || name;
        m.set(key, [...(m.get(key) ?? []), containerName(c)]);
        if (key !== name) m.set(name, [...(m.get(name) ?? []), containerName(c)]);
      }
    }
    return m;
  }, [f.containers, node]);
  const canWrite = me.role !== 'viewer';

  const askRemove = (n: DockerNetwork) => () => confirmAction({
      title: `Remove network ${n.Name}?`,
      body: <p>The network <strong>{n.Name}</strong> is deleted from <strong>{node}</strong>. Docker refuses while containers are attached.</p>,
      confirmLabel: 'Remove',
      danger: true,
    });
  const remove = async (n: DockerNetwork): Promise<void> => {
    await request('DELETE', dockerPath(node, `/networks/${encodeURIComponent(n.Id)}`));
    toast.success(`Network ${n.Name} removed`);
    state.reload();
  };

  const nodeContainersCount = (n: DockerNetwork): string[] => usage.get(n.Id) ?? usage.get(n.Name) ?? [];

  return (
    <ResourcePage me={me} node={node} kind="networks" {...(state.data ? { count: plural(state.data.length, 'network') } : {})}>
      <AsyncView state={state} loadingLabel="Loading networks…" errorTitle="Could not list networks">
        {(networks) =>
          networks.length === 0 ? (
            <Empty title="No networks on this node" />
          ) : (
            <DataTable caption={`Networks on ${node}`} columns={['Name', 'ID', 'Driver', 'Subnet', 'Containers']}>
              {[...networks].sort((a, b) => a.Name.localeCompare(b.Name)).map((n) => {
                const users = nodeContainersCount(n);
                const subnets = (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter(Boolean);
                return (
                  <tr key={n.Id}>
                    <td data-label="Name" class="cell-name">
                      <span class="strong">{n.Name}</span>
                      {BUILTIN_NETWORKS.has(n.Name) && <span class="chip">built-in</span>}
                      {n.Internal && <span class="chip">internal</span>}
                    </td>
                    <td data-label="ID" class="mono">{shortId(n.Id)}</td>
                    <td data-label="Driver">{n.Driver}{n.Scope && n.Scope !== 'local' ? ` (${n.Scope})` : ''}</td>
                    <td data-label="Subnet" class="mono">{subnets.join(', ') || '—'}</td>
                    <td data-label="Containers">{users.length ? <span title={users.join(', ')}>{users.length}</span> : <span class="muted">0</span>}</td>
                    <td class="cell-actions">
                      <div class="row-actions">
                        <button type="button" class={buttonClass('ghost', true)} onClick={() => setInspecting(n)}>Inspect</button>
                        {canWrite && !BUILTIN_NETWORKS.has(n.Name) && (
                          <ActionButton small variant="danger" what={`Remove ${n.Name}`} confirm={askRemove(n)} onClick={() => remove(n)}>Remove</ActionButton>
                        )}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </DataTable>
          )
        }
      </AsyncView>
      {inspecting && (
        <InspectDialog
          title={`Network ${inspecting.Name}`}
          path={dockerPath(node, `/networks/${encodeURIComponent(inspecting.Id)}`)}
          onClose={() => setInspecting(null)}
          facts={(d) => {
            const ipam = (d.IPAM ?? {}) as { Config?: Array<{ Subnet?: string; Gateway?: string }> | null };
            const attached = Object.values((d.Containers ?? {}) as Record<string, { Name?: string; IPv4Address?: string }>);
            return [
              ['ID', <code class="break">{String(d.Id)}</code>],
              ['Driver', String(d.Driver ?? '')],
              ['Scope', String(d.Scope ?? '')],
              ['Subnets', (ipam.Config ?? []).map((c) => `${c.Subnet ?? ''}${c.Gateway ? ` (gateway ${c.Gateway})` : ''}`).join(', ') || '—'],
              ['Internal', d.Internal ? 'yes' : 'no'],
              ['Attachable', d.Attachable ? 'yes' : 'no'],
              ['Containers', attached.length ? attached.map((c) => `${c.Name ?? '?'}${c.IPv4Address ? ` ${c.IPv4Address}` : ''}`).join(', ') : 'none'],
              ['Created', dateTime(d.Created as string)],
            ];
          }}
        />
      )}
    </ResourcePage>
  );
}

