/**
 * The fleet as it is now: nodes and every node's containers, from the hub's Server-Sent Events
 * stream (GET /api/v1/stream). If the stream cannot be opened, it polls the REST API instead
 * and keeps trying the stream.
 */
import { ApiError, apiNodePath, get } from './api.ts';
import { refreshMe, session } from './session.ts';
import { createStore } from './store.ts';
import type { DockerContainer, FleetContainer, NodeView } from './types.ts';

export type LiveMode = 'connecting' | 'live' | 'polling' | 'reconnecting';

export interface FleetState {
  mode: LiveMode;
  nodes: NodeView[] | null;
  /** containers/json (all=1) per node name */
  containers: ReadonlyMap<string, DockerContainer[]>;
  error: string | null;
  /** Date.now() of the last update */
  updatedAt: number;
}

const initial: FleetState = { mode: 'connecting', nodes: null, containers: new Map(), error: null, updatedAt: 0 };

export const fleet = createStore<FleetState>(initial, { coalesceMs: 40 });

let es: EventSource | null = null;
let pollTimer: ReturnType<typeof setTimeout> | null = null;
let retryTimer: ReturnType<typeof setTimeout> | null = null;
let running = false;
let failures = 0;
/** Whether the stream has opened before: a later open is a reconnect, after which the user's
 * grants may differ (the hub ends live streams when they change). */
let openedBefore = false;

const POLL_MS = 4000;

function setNodes(nodes: NodeView[]): void {
  fleet.set((s) => {
    const names = new Set(nodes.map((n) => n.name));
    let containers = s.containers;
    if ([...containers.keys()].some((k) => !names.has(k))) {
      containers = new Map([...containers].filter(([k]) => names.has(k)));
    }
    return { ...s, nodes, containers, error: null, updatedAt: Date.now() };
  });
}

function setContainers(node: string, items: DockerContainer[]): void {
  fleet.set((s) => {
    const containers = new Map(s.containers);
    containers.set(node, items);
    return { ...s, containers, updatedAt: Date.now() };
  });
}

function openStream(): void {
  if (!running) return;
  closeStream();
  let source: EventSource;
  try {
    source = new EventSource('/api/v1/stream', { withCredentials: true });
  } catch {
    startPolling();
    return;
  }
  es = source;
  source.addEventListener('open', () => {
    failures = 0;
    stopPolling();
    if (openedBefore) void refreshMe();
    openedBefore = true;
    fleet.set((s) => ({ ...s, mode: 'live', error: null }));
  });
  source.addEventListener('nodes', (e) => {
    try {
      const nodes = JSON.parse((e as MessageEvent<string>).data) as NodeView[];
      if (Array.isArray(nodes)) setNodes(nodes);
    } catch {
      /* a malformed event is skipped */
    }
  });
  source.addEventListener('containers', (e) => {
    try {
      const d = JSON.parse((e as MessageEvent<string>).data) as { node: string; items: DockerContainer[] };
      if (d && typeof d.node === 'string' && Array.isArray(d.items)) setContainers(d.node, d.items);
    } catch {
      /* skipped */
    }
  });
  source.addEventListener('error', () => {
    if (source !== es) return;
    if (source.readyState === EventSource.CLOSED) {
      // The hub refused the stream (not signed in, or no stream endpoint): fall back to polling,
      // which also notices a 401, and try the stream again later.
      es = null;
      failures++;
      startPolling();
      const delay = Math.min(30_000, 2000 * 2 ** Math.min(failures, 4));
      retryTimer = setTimeout(openStream, delay);
    } else {
      fleet.set((s) => ({ ...s, mode: s.mode === 'polling' ? 'polling' : 'reconnecting' }));
    }
  });
}

function closeStream(): void {
  if (es) {
    es.close();
    es = null;
  }
  if (retryTimer) {
    clearTimeout(retryTimer);
    retryTimer = null;
  }
}

async function pollOnce(): Promise<void> {
  try {
    const nodes = await get<NodeView[]>('/api/v1/nodes');
    setNodes(nodes);
    await Promise.all(
      nodes
        .filter((n) => n.status !== 'pending' && n.status !== 'revoked')
        .map(async (n) => {
          try {
            setContainers(n.name, await get<DockerContainer[]>(apiNodePath(n.name, '/containers')));
          } catch {
            /* one node's failure leaves its last list */
          }
        }),
    );
    fleet.set((s) => ({ ...s, error: null }));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // session store takes over
    fleet.set((s) => ({ ...s, error: err instanceof Error ? err.message : String(err) }));
  }
}

function startPolling(): void {
  fleet.set((s) => ({ ...s, mode: 'polling' }));
  if (pollTimer) return;
  const tick = async (): Promise<void> => {
    await pollOnce();
    if (running && pollTimer !== null) pollTimer = setTimeout(() => void tick(), POLL_MS);
  };
  pollTimer = setTimeout(() => void tick(), 0);
}

function stopPolling(): void {
  if (pollTimer) {
    clearTimeout(pollTimer);
    pollTimer = null;
  }
}

export function startLive(): void {
  if (running) return;
  running = true;
  failures = 0;
  fleet.set(initial);
  openStream();
  // If the stream has not said anything within 3 s, show data from the REST API meanwhile.
  setTimeout(() => {
    if (running && fleet.get().nodes === null) void pollOnce();
  }, 3000);
}

export function stopLive(): void {
  running = false;
  closeStream();
  stopPolling();
}

/** Refreshes one node's containers from the REST API (after an action, before the stream says so). */
export async function refreshContainers(node: string): Promise<void> {
  try {
    setContainers(node, await get<DockerContainer[]>(apiNodePath(node, '/containers')));
  } catch {
    /* the stream will catch up */
  }
}

export function containerName(c: DockerContainer): string {
  const n = c.Names?.[0];
  return n ? n.replace(/^\//, '') : c.Id.slice(0, 12);
}

/** All containers, each with its node, sorted by node then name. */
export function fleetContainers(state: FleetState): FleetContainer[] {
  const out: FleetContainer[] = [];
  for (const [node, items] of state.containers) {
    for (const c of items) out.push({ ...c, node, name: containerName(c) });
  }
  out.sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name));
  return out;
}

session.subscribe((s) => {
  if (s.status !== 'signedIn') stopLive();
});
