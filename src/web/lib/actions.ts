/** Docker actions the UI takes, through the hub's Docker API gateway. */
import { bytes, plural } from './format.ts';
import { dockerPath, json, request } from './api.ts';
import { fleet, refreshContainers } from './live.ts';

export type ContainerAction = 'start' | 'stop' | 'restart';

const PAST: Record<ContainerAction, string> = { start: 'started', stop: 'stopped', restart: 'restarted' };

function afterChange(node: string): void {
  // The live stream shows the change by itself; without it, ask for the list now.
  if (fleet.get().mode !== 'live') void refreshContainers(node);
}

export async function containerAction(node: string, id: string, action: ContainerAction): Promise<string> {
  await request('POST', dockerPath(node, `/containers/${encodeURIComponent(id)}/${action}`));
  afterChange(node);
  return PAST[action];
}

export async function removeContainer(node: string, id: string, force: boolean): Promise<void> {
  await request('DELETE', dockerPath(node, `/containers/${encodeURIComponent(id)}${force ? '?force=1' : ''}`));
  afterChange(node);
}

export type PruneKind = 'containers' | 'images' | 'volumes' | 'networks';

interface PruneResult {
  ContainersDeleted?: string[] | null;
  ImagesDeleted?: Array<{ Deleted?: string; Untagged?: string }> | null;
  VolumesDeleted?: string[] | null;
  NetworksDeleted?: string[] | null;
  SpaceReclaimed?: number;
}

/** Prunes and describes what went: "Removed 3 images, reclaimed 120 MB". */
export async function prune(node: string, kind: PruneKind, opts: { allImages?: boolean; allVolumes?: boolean } = {}): Promise<string> {
  let query = '';
  if (kind === 'images' && opts.allImages) query = `?filters=${encodeURIComponent(JSON.stringify({ dangling: ['false'] }))}`;
  if (kind === 'volumes' && opts.allVolumes) query = `?filters=${encodeURIComponent(JSON.stringify({ all: ['true'] }))}`;
  const r = (await json<PruneResult>('POST', dockerPath(node, `/${kind}/prune${query}`))) ?? {};
  if (kind === 'containers') afterChange(node);
  const count =
    kind === 'containers'
      ? (r.ContainersDeleted?.length ?? 0)
      : kind === 'images'
        ? (r.ImagesDeleted ?? []).filter((d) => d.Deleted).length
        : kind === 'volumes'
          ? (r.VolumesDeleted?.length ?? 0)
          : (r.NetworksDeleted?.length ?? 0);
  const noun = kind.slice(0, -1);
  if (count === 0 && !r.SpaceReclaimed) return `Nothing to prune on ${node}: no unused ${kind}.`;
  const space = kind === 'networks' ? '' : `, reclaimed ${bytes(r.SpaceReclaimed ?? 0)}`;
  return `Removed ${plural(count, noun)} on ${node}${space}.`;
}
