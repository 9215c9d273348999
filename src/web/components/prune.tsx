/**
 * Prune containers, images, volumes or networks on one node or the whole fleet. The dialog first
 * lists exactly what would go, computed from each node's current lists the way the engine
 * decides (stopped containers; dangling or all unused images; volumes no container uses, anonymous
 * only on engines from 23.0 unless asked; networks no running container uses, never bridge, host
 * or none). Only then does it prune through each node's Docker endpoint, and it says what went.
 */
import type { JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { PruneKind } from '../lib/actions.ts';
import { dockerPath, errorMessage, get, json } from '../lib/api.ts';
import { bytes, plural, shortId } from '../lib/format.ts';
import { containerName, fleet, refreshContainers } from '../lib/live.ts';
import { useStore } from '../lib/store.ts';
import type { DockerContainer, DockerImage, DockerNetwork, DockerVolume, NodeView } from '../lib/types.ts';
import { Dialog } from './dialog.tsx';
import { toast } from './toasts.tsx';
import { InlineError, Loading, SubmitButton, buttonClass } from './ui.tsx';

export type { PruneKind };

export const BUILTIN_NETWORKS = new Set(['bridge', 'host', 'none']);
const ALL = '';
const ACTIVE = new Set(['running', 'paused', 'restarting']);

/** One thing the prune would remove. */
export interface PruneItem {
  id: string;
  label: string;
  detail?: string;
}

interface NodePlan {
  node: string;
  items: PruneItem[];
  error?: string;
}
interface NodeResult {
  node: string;
  removed: string[];
  space: number;
  error?: string;
}

/** From Docker 23 (API 1.42) a volume prune takes only anonymous volumes unless `all` is set. */
export function pruneTakesNamedVolumes(view: NodeView | undefined): boolean {
  const major = Number(/^(\d+)\./.exec(view?.engine.version ?? '')?.[1] ?? 0);
  return major > 0 && major < 23;
}

export function isDangling(img: DockerImage): boolean {
  return (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>').length === 0;
}

export function imageLabel(img: DockerImage): string {
  const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
  return tags[0] ?? `<none> ${shortId(img.Id)}`;
}

/** What a prune of `kind` on one node would remove, from its inventory and containers. */
export function planFor(kind: PruneKind, view: NodeView | undefined, containers: DockerContainer[], items: unknown[], all: boolean): PruneItem[] {
  if (kind === 'containers') {
    return containers.filter((c) => !ACTIVE.has(c.State)).map((c) => ({ id: c.Id, label: containerName(c), detail: c.State }));
  }
  if (kind === 'images') {
    const used = new Set(containers.map((c) => c.ImageID).filter(Boolean));
    return (items as DockerImage[]).filter((img) => !used.has(img.Id) && (all || isDangling(img))).map((img) => ({ id: img.Id, label: imageLabel(img), detail: bytes(img.Size) }));
  }
  if (kind === 'volumes') {
    const used = new Set(containers.flatMap((c) => (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name!)));
    const named = all || pruneTakesNamedVolumes(view);
    return (items as DockerVolume[])
      .filter((v) => v.Driver === 'local' && !used.has(v.Name) && (named || v.Labels?.['com.docker.volume.anonymous'] !== undefined))
      .map((v) => ({ id: v.Name, label: v.Name }));
  }
  // The engine prunes a network without endpoints: only running containers hold one.
  const used = new Set(
    containers.filter((c) => ACTIVE.has(c.State)).flatMap((c) => Object.entries(c.NetworkSettings?.Networks ?? {}).flatMap(([name, n]) => [name, n.NetworkID].filter(Boolean) as string[])),
  );
  return (items as DockerNetwork[])
    .filter((n) => !BUILTIN_NETWORKS.has(n.Name) && n.Scope !== 'swarm' && !used.has(n.Id) && !used.has(n.Name))
    .map((n) => ({ id: n.Id, label: n.Name, detail: n.Driver }));
}

interface PruneAnswer {
  ContainersDeleted?: string[] | null;
  ImagesDeleted?: Array<{ Deleted?: string; Untagged?: string }> | null;
  VolumesDeleted?: string[] | null;
  NetworksDeleted?: string[] | null;
  SpaceReclaimed?: number;
}

async function pruneNode(node: string, kind: PruneKind, all: boolean, plan: PruneItem[]): Promise<NodeResult> {
  const filters = kind === 'images' && all ? { dangling: ['false'] } : kind === 'volumes' && all ? { all: ['true'] } : null;
  const query = filters ? `?filters=${encodeURIComponent(JSON.stringify(filters))}` : '';
  const r = (await json<PruneAnswer>('POST', dockerPath(node, `/${kind}/prune${query}`))) ?? {};
  const name = (id: string): string => plan.find((p) => p.id === id || p.id === `sha256:${id}` || p.label === id)?.label ?? shortId(id);
  const removed =
    kind === 'containers'
      ? (r.ContainersDeleted ?? []).map(name)
      : kind === 'images'
        ? (r.ImagesDeleted ?? []).flatMap((d) => (d.Deleted ? [name(d.Deleted)] : []))
        : kind === 'volumes'
          ? (r.VolumesDeleted ?? [])
          : (r.NetworksDeleted ?? []);
  if (kind === 'containers') void refreshContainers(node);
  return { node, removed, space: r.SpaceReclaimed ?? 0 };
}

const NOUN: Record<PruneKind, string> = { containers: 'stopped container', images: 'image', volumes: 'volume', networks: 'network' };

export function PruneDialog({
  kind,
  nodes,
  node: initialNode,
  onClose,
  onDone,
}: {
  kind: PruneKind;
  /** Nodes to choose from (online ones can be pruned); with more than one, "All nodes" is offered. */
  nodes: string[];
  node?: string;
  onClose: () => void;
  onDone?: (message: string) => void;
}): JSX.Element {
  const f = useStore(fleet);
  const [node, setNode] = useState(initialNode ?? (nodes.length > 1 ? ALL : (nodes[0] ?? ALL)));
  const [all, setAll] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [results, setResults] = useState<NodeResult[] | null>(null);
  const [inventory, setInventory] = useState<Map<string, unknown[] | string> | null>(kind === 'containers' ? new Map() : null);

  const targets = useMemo(() => (node === ALL ? nodes : [node]), [node, nodes.join('\u0000')]);
  const views = useMemo(() => new Map((f.nodes ?? []).map((n) => [n.name, n])), [f.nodes]);

  useEffect(() => {
    if (kind === 'containers') return;
    const ctl = new AbortController();
    setInventory(null);
    void Promise.all(
      targets
        .filter((n) => views.get(n)?.status === 'online')
        .map(async (n): Promise<[string, unknown[] | string]> => {
          try {
            // Live from the engine, not the hub's inventory: some changes (a commit) send no event.
            const live = await get<unknown[] | { Volumes?: unknown[] | null }>(dockerPath(n, kind === 'images' ? '/images/json' : `/${kind}`), { signal: ctl.signal });
            return [n, Array.isArray(live) ? live : (live.Volumes ?? [])];
          } catch (err) {
            return [n, errorMessage(err)];
          }
        }),
    ).then((pairs) => {
      if (!ctl.signal.aborted) setInventory(new Map(pairs));
    });
    return () => ctl.abort();
  }, [kind, targets]);

  const plans: NodePlan[] | null = useMemo(() => {
    if (!inventory) return null;
    return targets.map((n) => {
      const view = views.get(n);
      if (view && view.status !== 'online') return { node: n, items: [], error: `${n} is ${view.status}: nothing is pruned there` };
      const inv = inventory.get(n);
      if (typeof inv === 'string') return { node: n, items: [], error: inv };
      return { node: n, items: planFor(kind, view, f.containers.get(n) ?? [], inv ?? [], all) };
    });
  }, [inventory, targets, views, f.containers, kind, all]);

  const total = plans?.reduce((s, p) => s + p.items.length, 0) ?? 0;
  const title = `Prune ${kind === 'containers' ? 'stopped containers' : `unused ${kind}`}`;

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!plans || total === 0) return;
    setBusy(true);
    setError(null);
    const out: NodeResult[] = [];
    for (const p of plans.filter((x) => x.items.length > 0)) {
      try {
        out.push(await pruneNode(p.node, kind, all, p.items));
      } catch (err) {
        out.push({ node: p.node, removed: [], space: 0, error: errorMessage(err) });
      }
    }
    setBusy(false);
    setResults(out);
    const count = out.reduce((s, r) => s + r.removed.length, 0);
    const msg = `Removed ${plural(count, NOUN[kind])}${kind === 'networks' ? '' : `, reclaimed ${bytes(out.reduce((s, r) => s + r.space, 0))}`}.`;
    if (out.some((r) => r.error))
      setError(
        out
          .filter((r) => r.error)
          .map((r) => `${r.node}: ${r.error}`)
          .join(' · '),
      );
    else toast.success(msg);
    onDone?.(msg);
  };

  if (results) {
    return (
      <Dialog
        title={title}
        onClose={onClose}
        footer={
          <button type="button" class={buttonClass('primary')} onClick={onClose} data-autofocus="">
            Done
          </button>
        }
      >
        <div role="status">
          {results.map((r) => (
            <section key={r.node} aria-label={`Removed on ${r.node}`}>
              <h3>{r.node}</h3>
              {r.error ? (
                <p class="warn-text">{r.error}</p>
              ) : (
                <p>
                  Removed {plural(r.removed.length, NOUN[kind])}
                  {kind === 'networks' ? '' : `, reclaimed ${bytes(r.space)}`}.
                </p>
              )}
              {r.removed.length > 0 && (
                <ul>
                  {r.removed.map((x) => (
                    <li key={x} class="break">
                      {x}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          ))}
        </div>
        <InlineError>{error}</InlineError>
      </Dialog>
    );
  }
  return (
    <Dialog title={title} onClose={onClose} busy={busy} alert>
      <form onSubmit={(e) => void submit(e)}>
        {nodes.length > 1 || !initialNode ? (
          <div class="field">
            <label for="prune-node">Node</label>
            <select id="prune-node" value={node} onChange={(e) => setNode(e.currentTarget.value)}>
              {nodes.length > 1 && <option value={ALL}>All nodes</option>}
              {nodes.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </div>
        ) : (
          <p>
            Node: <strong>{node}</strong>
          </p>
        )}
        {kind === 'images' && (
          <div class="check">
            <input id="prune-all" type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
            <label for="prune-all">Also remove tagged images no container uses</label>
          </div>
        )}
        {kind === 'volumes' && targets.some((n) => !pruneTakesNamedVolumes(views.get(n))) && (
          <div class="check">
            <input id="prune-all" type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
            <label for="prune-all">Also remove named volumes no container uses</label>
          </div>
        )}
        {!plans ? (
          <Loading label="Working out what would be removed…" />
        ) : (
          <div aria-live="polite">
            <p>
              {total === 0 ? (
                `Nothing to remove: no ${kind === 'containers' ? 'stopped containers' : `unused ${kind}`}.`
              ) : (
                <>
                  These {plural(total, NOUN[kind])} will be removed{kind === 'volumes' ? ', with their data, for good' : ''}:
                </>
              )}
            </p>
            {plans.map(
              (p) =>
                (p.items.length > 0 || p.error) && (
                  <section key={p.node} aria-label={`To remove on ${p.node}`}>
                    <h3>{p.node}</h3>
                    {p.error && <p class="muted small">{p.error}</p>}
                    <ul>
                      {p.items.map((it) => (
                        <li key={it.id}>
                          <span class="break">{it.label}</span>
                          {it.detail && <span class="muted small"> · {it.detail}</span>}
                        </li>
                      ))}
                    </ul>
                  </section>
                ),
            )}
          </div>
        )}
        <InlineError>{error}</InlineError>
        <div class="form-actions">
          <button type="button" class={buttonClass('default')} onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <SubmitButton busy={busy} variant="danger" disabled={!plans || total === 0}>
            {total > 0 ? `Remove ${plural(total, NOUN[kind])}` : 'Prune'}
          </SubmitButton>
        </div>
      </form>
    </Dialog>
  );
}
