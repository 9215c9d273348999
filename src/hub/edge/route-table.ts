/**
 * Every node's ingress routes, from the hub's live inventory: each change of a node's containers
 * section re-reads that node's labels, and every node status change re-marks which routes are
 * reachable. The edge asks `match(host, path)`; the API and CLI show `list()`.
 *
 * Conflicts are settled the same way on every hub and after every restart: for one host+path the
 * claim of the container created first wins (the list's `Created`, then the container ID, then
 * the label index); every other claim is listed with a `conflict:` error and not served. A claim
 * with a label mistake is listed with its error and claims nothing, so it never takes a host+path
 * from a good route. A container that is not running keeps its route (`running: false`, the edge
 * answers 503), and so does an offline node's (`nodeOnline: false`, 502).
 */
import { EventEmitter } from 'node:events';
import type { RouteView } from '../../protocol/ingress.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { type RouteClaim, routesFromLabels } from './route-labels.ts';
import { readContainer, type ListedContainer } from './listed-container.ts';

export interface RouteTarget {
  node: string;
  containerId: string;
  containerName: string;
  /** 0 only for a container never seen running whose `.port` label is absent (it is not running, so 503). */
  port: number;
  protocol: 'http' | 'h2c' | 'https';
  access: string;
  /** `.idle-timeout` in seconds; null for the edge's default. */
  idleTimeout: number | null;
  running: boolean;
  nodeOnline: boolean;
}
export type RouteMatch = { host: string; path: string; target: RouteTarget };
export type RouteTls = RouteView['tls'];

export interface RouteTableEvents {
  /** The routes changed (a container, its labels, or a node's status). */
  changed: [];
}

interface Claimed {
  nodeId: string;
  container: ListedContainer;
  claim: RouteClaim;
  /** Set while building the index: the winner this claim lost to. */
  conflict: string | null;
}

const NO_TLS: RouteTls = { state: 'none', notAfter: null, error: null };

export class RouteTable extends EventEmitter<RouteTableEvents> {
  readonly #registry: NodeRegistry;
  readonly #inventory: InventoryCache;
  /** nodeId → that node's claims, from its last containers section. */
  readonly #claims = new Map<string, Claimed[]>();
  /** Exposed ports last seen per container ID (a stopped container lists none; exposure is fixed at create). */
  readonly #exposedSeen = new Map<string, number[]>();
  /** host → its served routes, longest path first. */
  #byHost = new Map<string, Claimed[]>();
  #tlsOf: (host: string) => RouteTls = () => NO_TLS;
  readonly #onInventory = (nodeId: string, what: string): void => {
    if (what !== 'containers') return;
    this.#readNode(nodeId);
    this.#rebuild();
  };
  readonly #onRegistry = (): void => this.#rebuild();

  constructor(registry: NodeRegistry, inventory: InventoryCache) {
    super();
    this.#registry = registry;
    this.#inventory = inventory;
    for (const view of registry.list()) {
      const node = registry.byName(view.name);
      if (node) this.#readNode(node.id);
    }
    this.#rebuild();
    inventory.on('changed', this.#onInventory);
    registry.on('changed', this.#onRegistry);
  }

  /** Where `list()` finds each host's certificate state (the edge's certificate store, later). */
  showTls(tlsOf: (host: string) => RouteTls): void {
    this.#tlsOf = tlsOf;
  }

  /** The served route for a request: host compared lowercase without its port, longest path prefix by whole segments. */
  match(host: string, path: string): RouteMatch | null {
    const routes = this.#byHost.get(bareHost(host));
    if (!routes) return null;
    const wanted = path.split('?')[0] ?? '/';
    for (const r of routes) {
      const prefix = r.claim.path;
      if (prefix === '/' || wanted === prefix || wanted.startsWith(`${prefix}/`)) {
        return { host: r.claim.host, path: prefix, target: this.#target(r) };
      }
    }
    return null;
  }

  list(): RouteView[] {
    return this.#liveClaims()
      .map(
        (c): RouteView => ({
          host: c.claim.host,
          path: c.claim.path,
          node: this.#nodeName(c.nodeId),
          container: c.container.name,
          port: c.claim.port,
          access: c.claim.access,
          protocol: c.claim.protocol,
          running: c.container.running,
          nodeOnline: this.#online(c.nodeId),
          tls: c.claim.error === null && c.conflict === null ? this.#tlsOf(c.claim.host) : NO_TLS,
          error: c.claim.error ?? c.conflict,
        }),
      )
      .sort(
        (a, b) =>
          a.host.localeCompare(b.host) || a.path.localeCompare(b.path) || Number(a.error !== null) - Number(b.error !== null) || a.node.localeCompare(b.node) || a.container.localeCompare(b.container),
      );
  }

  close(): void {
    this.#inventory.off('changed', this.#onInventory);
    this.#registry.off('changed', this.#onRegistry);
  }

  #readNode(nodeId: string): void {
    const items = this.#inventory.section(nodeId, 'containers')?.items ?? [];
    const claims: Claimed[] = [];
    const previous = new Set((this.#claims.get(nodeId) ?? []).map((c) => c.container.id));
    for (const item of items) {
      const container = readContainer(item);
      if (!container) continue;
      previous.delete(container.id);
      if (container.exposed) this.#exposedSeen.set(container.id, container.exposed);
      if (!container.hasIngress) continue;
      const exposed = container.exposed ?? this.#exposedSeen.get(container.id) ?? null;
      for (const claim of routesFromLabels(container.labels, exposed)) claims.push({ nodeId, container, claim, conflict: null });
    }
    for (const gone of previous) this.#exposedSeen.delete(gone);
    if (claims.length > 0) this.#claims.set(nodeId, claims);
    else this.#claims.delete(nodeId);
  }

  #rebuild(): void {
    const valid = this.#liveClaims().filter((c) => c.claim.error === null);
    valid.sort((a, b) => a.container.created - b.container.created || compare(a.container.id, b.container.id) || Number(a.claim.index || -1) - Number(b.claim.index || -1));
    const winners = new Map<string, Claimed>();
    const byHost = new Map<string, Claimed[]>();
    for (const c of valid) {
      const key = `${c.claim.host} ${c.claim.path}`;
      const winner = winners.get(key);
      if (winner) {
        c.conflict = `conflict: ${c.claim.host}${c.claim.path} already served by ${this.#nodeName(winner.nodeId)}/${winner.container.name}`;
        continue;
      }
      c.conflict = null;
      winners.set(key, c);
      let routes = byHost.get(c.claim.host);
      if (!routes) byHost.set(c.claim.host, (routes = []));
      routes.push(c);
    }
    for (const routes of byHost.values()) routes.sort((a, b) => b.claim.path.length - a.claim.path.length);
    this.#byHost = byHost;
    this.emit('changed');
  }

  /** Claims of nodes that still exist and are not revoked (a revoked node serves nothing). */
  #liveClaims(): Claimed[] {
    return [...this.#claims]
      .filter(([nodeId]) => {
        const node = this.#registry.byId(nodeId);
        return node !== null && node.state !== 'revoked';
      })
      .flatMap(([, claims]) => claims);
  }

  #target(c: Claimed): RouteTarget {
    return {
      node: this.#nodeName(c.nodeId),
      containerId: c.container.id,
      containerName: c.container.name,
      port: c.claim.port ?? 0,
      protocol: c.claim.protocol,
      access: c.claim.access,
      idleTimeout: c.claim.idleTimeout,
      running: c.container.running,
      nodeOnline: this.#online(c.nodeId),
    };
  }

  #nodeName(nodeId: string): string {
    return this.#registry.byId(nodeId)?.name ?? nodeId;
  }

  #online(nodeId: string): boolean {
    const node = this.#registry.byId(nodeId);
    return node !== null && this.#registry.status(node) === 'online';
  }
}

/** `Example.COM:8443` → `example.com`; `[::1]:443` → `[::1]`; a trailing dot is dropped. */
export function bareHost(host: string): string {
  const lower = host.trim().toLowerCase();
  const bare = lower.startsWith('[') ? lower.slice(0, lower.indexOf(']') + 1) : lower.replace(/:\d*$/, '');
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
