/**
 * The browser's stats feed as Server-Sent Events: GET STATS_STREAM_PATH?c=NODE/ID&…&host=NODE&…
 * names exactly what the page shows (the page reopens it when what is visible changes). It
 * starts with `history` (the recent points the hub holds), then one `tick` per node per second.
 * A browser that cannot keep up (more than MAX_BUFFERED bytes waiting) is dropped; EventSource
 * reconnects by itself and gets the history again.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import { containerId } from '../../protocol/stats.ts';
import type { Principals } from '../auth/principals.ts';
import type { StatsHub } from './stats-hub.ts';

export const STATS_STREAM_PATH = '/api/v1/stats/stream';
/** Containers one page may watch at once. */
export const MAX_CONTAINERS_PER_PAGE = 500;
const MAX_HOSTS_PER_PAGE = 200;
const MAX_BUFFERED = 1024 * 1024;
const KEEPALIVE_MS = 15_000;
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface StatsSelection {
  containers: Map<string, Set<string>>;
  hosts: Set<string>;
}

/** Parses the query; a malformed entry is a clear 400, too many a 400 naming the cap. */
export function parseSelection(search: string): StatsSelection {
  const params = new URLSearchParams(search);
  const containers = new Map<string, Set<string>>();
  const entries = params.getAll('c');
  if (entries.length > MAX_CONTAINERS_PER_PAGE) throw new DockfleetError('validation_failed', `at most ${MAX_CONTAINERS_PER_PAGE} containers per stats stream`);
  for (const entry of entries) {
    const slash = entry.lastIndexOf('/');
    const node = entry.slice(0, slash);
    const id = entry.slice(slash + 1);
    if (slash < 1 || !NODE_NAME.test(node) || !containerId.safeParse(id).success) throw new DockfleetError('validation_failed', `c must be NODE/CONTAINER_ID, got "${entry.slice(0, 100)}"`);
    let ids = containers.get(node);
    if (!ids) containers.set(node, (ids = new Set()));
    ids.add(id);
  }
  const hostList = params.getAll('host');
  if (hostList.length > MAX_HOSTS_PER_PAGE) throw new DockfleetError('validation_failed', `at most ${MAX_HOSTS_PER_PAGE} hosts per stats stream`);
  for (const node of hostList) if (!NODE_NAME.test(node)) throw new DockfleetError('validation_failed', `host must be a node name, got "${node.slice(0, 100)}"`);
  return { containers, hosts: new Set(hostList) };
}

export class StatsEvents {
  readonly #hub: StatsHub;
  readonly #principals: Principals;
  readonly #open = new Set<ServerResponse>();

  constructor(hub: StatsHub, principals: Principals) {
    this.#hub = hub;
    this.#principals = principals;
  }

  get clientCount(): number {
    return this.#open.size;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let selection: StatsSelection;
    try {
      const principal = await this.#principals.fromRequest(req);
      selection = parseSelection((req.url ?? '').split('?')[1] ?? '');
      // Only nodes the caller may see (a customer's own): any other is answered as absent.
      for (const node of [...selection.containers.keys(), ...selection.hosts]) principal.access.requireSight(node);
    } catch (err) {
      const e = toDockfleetError(err);
      res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.toJSON()));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    this.#open.add(res);
    const history = {
      containers: [...selection.containers].flatMap(([node, ids]) => [...ids].map((id) => ({ node, id, points: this.#hub.containerHistory(node, id) }))),
      hosts: [...selection.hosts].map((node) => ({ node, points: this.#hub.hostHistory(node) })),
    };
    res.write(`event: history\ndata: ${JSON.stringify(history)}\n\n`);
    const unwatch = this.#hub.watch({
      containers: selection.containers,
      hosts: selection.hosts,
      onTick: (tick) => {
        if (res.writableLength > MAX_BUFFERED) return void res.destroy();
        res.write(`event: tick\ndata: ${JSON.stringify(tick)}\n\n`);
      },
    });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    res.once('close', () => {
      clearInterval(keepalive);
      unwatch();
      this.#open.delete(res);
    });
  }

  close(): void {
    for (const res of this.#open) res.end();
    this.#open.clear();
  }
}
