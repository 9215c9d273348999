/**
 * Live stats in the browser: components watch a container (or a node's host) while they are on
 * screen; this keeps one EventSource (GET /api/v1/stats/stream) naming exactly that set, reopened
 * a moment after the set changes and closed when it is empty, so the hub's agents sample only
 * what someone can see. Points are kept per key in a small ring (POINTS), never more.
 */
import { session } from './session.ts';
import { createStore } from './store.ts';

export interface ContainerPoint {
  at: number;
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  netRx: number;
  netTx: number;
  blkRead: number;
  blkWrite: number;
}
export interface HostPoint {
  at: number;
  cpuPercent: number;
  cpus: number;
  memUsed: number;
  memTotal: number;
}

/** One minute at a point a second. */
const POINTS = 60;
const REOPEN_MS = 150;

/** Points by key: `c:NODE/ID` for containers, `h:NODE` for hosts. */
export const statsPoints = createStore<ReadonlyMap<string, ReadonlyArray<ContainerPoint | HostPoint>>>(new Map(), { coalesceMs: 100 });

const watched = new Map<string, number>();
let source: EventSource | null = null;
let openFor = '';
// biome-ignore lint/correctness/noUnusedVariables: read by `timer ??=` below, which keeps one reopen pending
let timer: ReturnType<typeof setTimeout> | null = null;

export const containerKey = (node: string, id: string): string => `c:${node}/${id}`;
export const hostKey = (node: string): string => `h:${node}`;

/** Container ids go out short (12 hex, as `docker ps` shows them): 200 full ids made a request
 * line over the hub's 16 KB header limit. Answers come back by short id; this maps them home. */
const SHORT = 12;
let byShort = new Map<string, string>();

function queryOf(keys: string[]): string {
  const params = new URLSearchParams();
  for (const k of keys) params.append(k.startsWith('c:') ? 'c' : 'host', k.startsWith('c:') ? k.slice(2, k.lastIndexOf('/') + 1 + SHORT) : k.slice(2));
  return params.toString();
}

const keyOf = (node: string, id: string): string => byShort.get(`${node}/${id.slice(0, SHORT)}`) ?? containerKey(node, id);

function append(entries: Array<[string, Array<ContainerPoint | HostPoint>]>): void {
  statsPoints.set((prev) => {
    const next = new Map(prev);
    for (const [key, points] of entries) {
      if (!watched.has(key)) continue;
      const list = [...(next.get(key) ?? []), ...points];
      next.set(key, list.length > POINTS ? list.slice(list.length - POINTS) : list);
    }
    return next;
  });
}

function reopen(): void {
  timer = null;
  const keys = [...watched.keys()].sort();
  const query = queryOf(keys);
  if (query === openFor && source) return;
  source?.close();
  source = null;
  openFor = query;
  // Forget what nobody shows any more.
  statsPoints.set((prev) => new Map([...prev].filter(([k]) => watched.has(k))));
  if (keys.length === 0) return;
  byShort = new Map(keys.filter((k) => k.startsWith('c:')).map((k) => [k.slice(2, k.lastIndexOf('/') + 1 + SHORT), k]));
  const es = new EventSource(`/api/v1/stats/stream?${query}`, { withCredentials: true });
  source = es;
  es.addEventListener('history', (e) => {
    try {
      const d = JSON.parse((e as MessageEvent<string>).data) as { containers: Array<{ node: string; id: string; points: ContainerPoint[] }>; hosts: Array<{ node: string; points: HostPoint[] }> };
      statsPoints.set((prev) => new Map([...prev].filter(([k]) => !watched.has(k))));
      append([...d.containers.map((c) => [keyOf(c.node, c.id), c.points] as [string, ContainerPoint[]]), ...d.hosts.map((h) => [hostKey(h.node), h.points] as [string, HostPoint[]])]);
    } catch {
      /* a malformed event is skipped */
    }
  });
  es.addEventListener('tick', (e) => {
    try {
      const t = JSON.parse((e as MessageEvent<string>).data) as { node: string; at: number; host?: Omit<HostPoint, 'at'>; containers: Array<Omit<ContainerPoint, 'at'> & { id: string }> };
      const entries: Array<[string, Array<ContainerPoint | HostPoint>]> = t.containers.map((c) => [keyOf(t.node, c.id), [{ ...c, at: t.at }]]);
      if (t.host) entries.push([hostKey(t.node), [{ ...t.host, at: t.at }]]);
      append(entries);
    } catch {
      /* skipped */
    }
  });
}

function schedule(): void {
  timer ??= setTimeout(reopen, REOPEN_MS);
}

/** localStorage `dockfleet.stats` = `off` turns the live feed off in this browser (the stats
 * benchmark measures the same page with and without it; also a way out on a slow machine). */
const statsOff = (): boolean => {
  try {
    return localStorage.getItem('dockfleet.stats') === 'off';
  } catch {
    return false;
  }
};

/** Watches a key (containerKey/hostKey) until the returned function is called. */
export function watchStats(key: string): () => void {
  if (statsOff()) return () => {};
  watched.set(key, (watched.get(key) ?? 0) + 1);
  schedule();
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const left = (watched.get(key) ?? 1) - 1;
    if (left > 0) watched.set(key, left);
    else watched.delete(key);
    schedule();
  };
}

/** Stops everything (sign-out). */
export function stopStats(): void {
  watched.clear();
  schedule();
}

session.subscribe((s) => {
  if (s.status !== 'signedIn') stopStats();
});
