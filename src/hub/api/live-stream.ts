/**
 * Live updates for the UI as Server-Sent Events: `nodes` (the whole list) and `containers`
 * ({node, items}) on every change. Changes are coalesced per client and flushed a few times a
 * second, so a burst of engine events costs one message. A client that cannot keep up (more
 * than MAX_BUFFERED bytes waiting) is dropped, not buffered without end; EventSource
 * reconnects by itself and gets a fresh snapshot. When the user's access changes (a grant added
 * or removed, role or scope changed, the user disabled or signed out) the stream is ended the same
 * way, so the reconnect carries the new access (access/access-watch.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toDockfleetError } from '../../protocol/errors.ts';
import type { Principal, Principals } from '../auth/principals.ts';
import type { NodeAccess } from '../access/node-access.ts';
import { watchAccess } from '../access/access-watch.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { NodeRegistry } from '../node-registry.ts';

export const LIVE_STREAM_PATH = '/api/v1/stream';
const FLUSH_MS = 250;
const KEEPALIVE_MS = 15_000;
const MAX_BUFFERED = 4 * 1024 * 1024;

interface Client {
  res: ServerResponse;
  /** The nodes this client may see: a scoped user's feed carries only its granted nodes. */
  access: NodeAccess;
  nodes: boolean;
  containers: Set<string>;
}

export class LiveStream {
  readonly #registry: NodeRegistry;
  readonly #inventory: InventoryCache;
  readonly #principals: Principals;
  readonly #clients = new Set<Client>();
  #timer: NodeJS.Timeout | null = null;

  constructor(registry: NodeRegistry, inventory: InventoryCache, principals: Principals) {
    this.#registry = registry;
    this.#inventory = inventory;
    this.#principals = principals;
    registry.on('changed', () => this.#mark((c) => (c.nodes = true)));
    inventory.on('changed', (nodeId, what) => {
      this.#mark((c) => {
        c.nodes = true;
        if (what === 'containers') c.containers.add(nodeId);
      });
    });
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.#principals.fromRequest(req);
    } catch (err) {
      const e = toDockfleetError(err);
      res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.toJSON()));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    const client: Client = { res, access: principal.access, nodes: true, containers: new Set(this.#registry.list().map((n) => this.#registry.byName(n.name)!.id)) };
    this.#clients.add(client);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const stopWatch = watchAccess(
      principal,
      () => this.#principals.fromRequest(req),
      () => {
        this.#clients.delete(client);
        res.end();
      },
    );
    res.once('close', () => {
      stopWatch();
      clearInterval(keepalive);
      this.#clients.delete(client);
    });
    this.#flush(client);
  }

  close(): void {
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  #mark(update: (c: Client) => void): void {
    if (this.#clients.size === 0) return;
    for (const c of this.#clients) update(c);
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      // Each payload is serialised once per flush, however many clients want it.
      const payloads = new Payloads(this.#registry, this.#inventory);
      for (const c of this.#clients) this.#flush(c, payloads);
    }, FLUSH_MS);
  }

  #flush(client: Client, payloads = new Payloads(this.#registry, this.#inventory)): void {
    const { res } = client;
    if (res.writableLength > MAX_BUFFERED) {
      res.end();
      this.#clients.delete(client);
      return;
    }
    if (client.nodes) {
      client.nodes = false;
      res.write(client.access.scoped ? payloads.nodesFor(client.access) : payloads.nodes());
    }
    for (const nodeId of client.containers) {
      const name = this.#registry.byId(nodeId)?.name;
      if (name === undefined || !client.access.canSee(name)) continue;
      const event = payloads.containers(nodeId);
      if (event) res.write(event);
    }
    client.containers.clear();
  }
}

/** The events of one flush, built on first use and shared by every client. */
class Payloads {
  readonly #registry: NodeRegistry;
  readonly #inventory: InventoryCache;
  #nodes: string | null = null;
  readonly #containers = new Map<string, string | null>();

  constructor(registry: NodeRegistry, inventory: InventoryCache) {
    this.#registry = registry;
    this.#inventory = inventory;
  }

  nodes(): string {
    this.#nodes ??= `event: nodes\ndata: ${JSON.stringify(this.#registry.list())}\n\n`;
    return this.#nodes;
  }

  /** The node list cut to what one scoped client sees (serialised for that client alone). */
  nodesFor(access: NodeAccess): string {
    return `event: nodes\ndata: ${JSON.stringify(this.#registry.list().filter((n) => access.canSee(n.name)))}\n\n`;
  }

  containers(nodeId: string): string | null {
    let event = this.#containers.get(nodeId);
    if (event === undefined) {
      const node = this.#registry.byId(nodeId);
      const items = this.#inventory.section(nodeId, 'containers')?.items ?? [];
      event = node ? `event: containers\ndata: ${JSON.stringify({ node: node.name, items })}\n\n` : null;
      this.#containers.set(nodeId, event);
    }
    return event;
  }
}
