/**
 * Who the nodes are and how they are: durable records from the store, live links from the
 * gateway, inventory from the cache. Status is derived, never stored: revoked and pending come
 * from the record, online/offline from whether a link is up.
 *
 * With hub replicas (issue 17; absent on a single hub, whose behaviour this leaves unchanged) a
 * RegistryCluster is joined: each local link claims its node (the newest link wins; a link whose
 * claim is superseded or lost is closed and never answers for that node again), a node held by
 * another live replica is online here too and reached through a RemoteLink to it, nobody holding
 * it is offline at once, and with the bus down a node not held here fails at once with
 * bus_unavailable. Record changes (enrolment, approval, revocation) are announced on the bus and
 * every replica reloads that record from the store (all of them when the bus comes back). What
 * each holder's agents report (inventory, engine, version, policy, host use, events) reaches
 * every replica's views through the view feed (cluster/view-feed.ts).
 */
import { EventEmitter } from 'node:events';
import { DockfleetError } from '../protocol/errors.ts';
import type { HostUsage, NodeStatus, NodeView } from '../protocol/api.ts';
import { DEAD_AFTER_MS } from '../protocol/heartbeat.ts';
import { OwnStall } from '../lib/own-stall.ts';
import type { InventoryMessage } from '../protocol/inventory.ts';
import type { PolicySummary } from '../protocol/policy-summary.ts';
import type { NodeRecord, Store } from '../store/store.ts';
import type { Logger } from '../lib/logger.ts';
import type { AgentLink } from './gateway/agent-link.ts';
import type { OwnerAnswer } from './cluster/ownership.ts';
import { ViewFeed } from './cluster/view-feed.ts';
import type { FleetEvent } from '../protocol/fleet-events.ts';
import type { InventoryCache } from './inventory-cache.ts';

const LAST_SEEN_FLUSH_MS = 10_000;
const SWEEP_MS = 1_000;

interface PendingWaiter {
  admit: () => void;
  reject: (reason: DockfleetError) => void;
}

/** The order localeCompare gives, at a fraction of its cost per comparison (a list sorts every node). */
const byName = new Intl.Collator();

/** What callers of a node need from its link: the local AgentLink, or a RemoteLink through the replica holding it. */
export type NodeLink = Pick<AgentLink, 'nodeId' | 'nodeName' | 'closed' | 'qos' | 'request' | 'requestJson' | 'openStream'>;

export interface ClusterEvents {
  /** This replica's claim on the node (by id) at `epoch` is superseded: close that link. */
  lost: [nodeId: string, epoch: number];
  /** This replica claimed the node again after the bus came back: the link's epoch is now `to`. */
  renewed: [nodeId: string, from: number, to: number];
  /** Who holds what (or who is alive) may have changed: for these nodes (by id), or for any when null. */
  owners: [nodes: ReadonlySet<string> | null];
  /** The bus is back: what it says can be trusted again. */
  up: [];
  /** Some replica changed this node's record (by id). */
  nodeChanged: [nodeId: string];
  /** Some replica filed work for this node (by name). */
  nudged: [nodeName: string];
}

/** The cluster as the registry sees it (cluster/replica.ts): ownership, remote links, two bus messages, and
 * byte subjects for the view feed (cluster/view-feed.ts). */
export interface RegistryCluster extends EventEmitter<ClusterEvents> {
  readonly replicaId: string;
  readonly busUp: boolean;
  readonly maxPayload: number;
  localEpoch(nodeId: string): number | undefined;
  listen(subject: string, handle: (data: Uint8Array) => void): void;
  send(subject: string, data: Uint8Array): boolean;
  claim(nodeId: string): Promise<{ won: true; epoch: number } | { won: false; reason: 'superseded' | 'bus_down' }>;
  /** Gives the claim up if it is still this replica's at `epoch` (compare-and-set). */
  release(nodeId: string, epoch: number): Promise<void>;
  owner(nodeId: string): OwnerAnswer;
  remote(node: { id: string; name: string }, replica: string, epoch: number): NodeLink | null;
  publish(subject: 'nodes.changed' | 'jobs.nudge', value: string): void;
}

export interface RegistryEvents {
  /** Something any node view shows may have changed (status, record, facts). */
  changed: [];
  /** A node's link is up (attached; any link it replaced is closed already). */
  linked: [link: AgentLink];
  /** Another replica filed work for this node: deliver it if its link is here. */
  nudged: [nodeName: string];
  /** Docker events another replica's agents reported (cluster/view-feed.ts). */
  remoteEvents: [events: Array<Omit<FleetEvent, 'seq'>>];
}

export class NodeRegistry extends EventEmitter<RegistryEvents> {
  readonly #store: Store;
  readonly #inventory: InventoryCache;
  readonly #log: Logger;
  readonly #byId = new Map<string, NodeRecord>();
  /** name → id of the record that name refers to (the live one, else the newest revoked). */
  readonly #idByName = new Map<string, string>();
  readonly #links = new Map<string, AgentLink>();
  readonly #pending = new Map<string, PendingWaiter>();
  /** Each node's policy as its agent last reported it (kept while offline; not persisted: null until it reports after a hub start). */
  readonly #policies = new Map<string, PolicySummary>();
  /** Each node's host audit head as its agent last reported it (in memory only). */
  readonly #auditHeads = new Map<string, { seq: number; hash: string }>();
  /** Each online node's host use as its agent last reported it (not persisted; forgotten when its link closes). */
  readonly #usage = new Map<string, HostUsage>();
  #labelsOf: (name: string) => Record<string, string> = () => ({});
  #cluster: RegistryCluster | null = null;
  /** What the other replicas' agents report, shown here too (with replicas only). */
  #feed: ViewFeed | null = null;
  /** The epoch each local link's claim landed at (with replicas only). */
  readonly #claims = new WeakMap<AgentLink, number>();
  #flushTimer: NodeJS.Timeout | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;
  readonly #sweepStall = new OwnStall(SWEEP_MS);

  constructor(store: Store, inventory: InventoryCache, log: Logger) {
    super();
    this.#store = store;
    this.#inventory = inventory;
    this.#log = log;
  }

  async init(): Promise<void> {
    for (const node of await this.#store.listNodes()) {
      this.#byId.set(node.id, node);
      this.#idByName.set(node.name, node.id);
      if (node.state !== 'revoked') await this.#inventory.load(node.id);
    }
    this.#flushTimer = setInterval(() => void this.flushLastSeen(), LAST_SEEN_FLUSH_MS);
    this.#flushTimer.unref();
    this.#sweepTimer = setInterval(() => this.#sweepSilentLinks(), SWEEP_MS);
    this.#sweepTimer.unref();
  }

  /** One timer for every link: a link silent for DEAD_AFTER_MS (no ping, no message) is dead;
   * not judged on a sweep that ran late (own-stall.ts). */
  #sweepSilentLinks(): void {
    if (!this.#sweepStall.onTime()) return;
    const cutoff = Date.now() - DEAD_AFTER_MS;
    for (const link of this.#links.values()) {
      if (link.lastSeen < cutoff) {
        this.#log.warn({ node: link.nodeName }, 'agent link silent too long, dropping it');
        link.close();
      }
    }
  }

  /** Remembers a node the enrollment just created. */
  add(node: NodeRecord): void {
    const previous = this.#idByName.get(node.name);
    if (previous !== undefined) this.#byId.delete(previous);
    this.#byId.set(node.id, node);
    this.#idByName.set(node.name, node.id);
    this.#cluster?.publish('nodes.changed', node.id);
    this.emit('changed');
  }

  byName(name: string): NodeRecord | null {
    const id = this.#idByName.get(name);
    return id === undefined ? null : (this.#byId.get(id) ?? null);
  }

  /** Every node's record, in no particular order (cheaper than list() for a walk over all). */
  records(): IterableIterator<NodeRecord> {
    return this.#byId.values();
  }

  byId(id: string): NodeRecord | null {
    return this.#byId.get(id) ?? null;
  }

  /** A node by name for the API: unknown names are node_not_found. */
  require(name: string): NodeRecord {
    const node = this.byName(name);
    if (!node) throw new DockfleetError('node_not_found', `no node named ${name}`);
    return node;
  }

  /** The node's link held by this hub (replica), if any: jobs and per-link state use it alone. */
  link(nodeId: string): AgentLink | null {
    return this.#links.get(nodeId) ?? null;
  }

  /** The link held here for a node by name, or node_offline (for what must run on the agent's own link). */
  requireLocalLink(name: string): AgentLink {
    const node = this.require(name);
    const link = this.#links.get(node.id);
    if (!link) throw new DockfleetError('node_offline', `node ${name} is ${this.status(node)}${this.#cluster ? ` on replica ${this.#cluster.replicaId}` : ''}`);
    return link;
  }

  /** A call's way to an online node: the link held here, else (replicas) one through the replica that holds it;
   * node_offline when nobody holds it, bus_unavailable when the bus is down and it is not held here. */
  requireLink(name: string): NodeLink {
    const node = this.require(name);
    const link = this.#links.get(node.id);
    if (link) return link;
    const cluster = this.#cluster;
    if (cluster && node.state === 'active') {
      const owner = cluster.owner(node.id);
      if (owner.state === 'unknown') {
        throw new DockfleetError(
          'bus_unavailable',
          `node ${name} is not connected to replica ${cluster.replicaId} and the cluster bus is down: which replica holds it cannot be known now; try again, or through the replica it is connected to`,
        );
      }
      if (owner.state === 'held' && owner.replica !== cluster.replicaId) {
        const remote = cluster.remote(node, owner.replica, owner.epoch);
        if (remote) return remote;
      }
    }
    throw new DockfleetError('node_offline', `node ${name} is ${this.status(node)}`);
  }

  status(node: NodeRecord): NodeStatus {
    if (node.state === 'revoked') return 'revoked';
    if (node.state === 'pending') return 'pending';
    if (this.#links.has(node.id)) return 'online';
    const owner = this.#cluster?.owner(node.id);
    return owner?.state === 'held' && owner.replica !== this.#cluster?.replicaId ? 'online' : 'offline';
  }

  /** Joins the hub replicas: claims the links already here, then follows ownership and record changes. */
  joinCluster(cluster: RegistryCluster): void {
    this.#cluster = cluster;
    cluster.on('lost', (nodeId, epoch) => {
      const link = this.#links.get(nodeId);
      if (!link || this.#claims.get(link) !== epoch) return;
      this.#claims.delete(link);
      this.#log.info({ node: link.nodeName, epoch }, 'another replica holds this node now; closing its link here');
      link.close({ t: 'error', code: 'replaced', message: 'another connection of this node took over (at another hub replica)' });
    });
    cluster.on('renewed', (nodeId, from, to) => {
      const link = this.#links.get(nodeId);
      if (link && this.#claims.get(link) === from) this.#claims.set(link, to);
    });
    cluster.on('owners', () => this.emit('changed'));
    cluster.on('nodeChanged', (id) => void this.#reload(id));
    cluster.on('nudged', (name) => this.emit('nudged', name));
    cluster.on('up', () => {
      // Records may have changed while we could not hear; links that could not claim claim now.
      void this.#reloadAll();
      for (const link of this.#links.values()) if (!this.#claims.has(link)) void this.#claim(link);
    });
    for (const link of this.#links.values()) void this.#claim(link);
    this.#feed = new ViewFeed(cluster, this, this.#inventory, this.#log, this.#links.values());
  }

  /** A holder elsewhere reported this for a node not linked here (view-feed.ts): shown, kept in memory only. */
  takeRemoteReport(nodeId: string, msg: InventoryMessage): void {
    if (msg.t === 'policy') this.#policies.set(nodeId, msg.summary);
    else if (msg.t === 'auditHead') this.#auditHeads.set(nodeId, { seq: msg.seq, hash: msg.hash });
    else if (msg.t === 'engine' && msg.state === 'up') {
      const node = this.#byId.get(nodeId);
      if (node) node.facts = msg.facts;
    }
  }

  /** Something another replica's link reported changed a node view. */
  remoteChanged(): void {
    this.emit('changed');
  }

  /** Docker events another replica's agents reported (for FleetEvents). */
  remoteEvents(events: Array<Omit<FleetEvent, 'seq'>>): void {
    this.emit('remoteEvents', events);
  }

  /** A Docker event a link held here reported: passed on to the other replicas (FleetEvents calls it). */
  shareEvent(event: Omit<FleetEvent, 'seq'>): void {
    this.#feed?.shareEvent(event);
  }

  /** Whether this hub is one of several replicas. */
  get clustered(): boolean {
    return this.#cluster !== null;
  }

  /** Work was filed for `name`: tells the other replicas, whose link to it may be the one. */
  nudge(name: string): void {
    this.#cluster?.publish('jobs.nudge', name);
  }

  async #claim(link: AgentLink): Promise<void> {
    const cluster = this.#cluster;
    if (!cluster) return;
    const result = await cluster.claim(link.nodeId).catch((err: Error) => {
      this.#log.warn({ node: link.nodeName, err: err.message }, 'could not claim the node on the bus');
      return null;
    });
    if (!result) return;
    if (!result.won) {
      // bus_down: the link serves calls made here; it claims when the bus is back.
      if (result.reason === 'superseded') link.close({ t: 'error', code: 'replaced', message: 'another connection of this node took over (at another hub replica)' });
      return;
    }
    if (link.closed || this.#links.get(link.nodeId) !== link) return void cluster.release(link.nodeId, result.epoch);
    this.#claims.set(link, result.epoch);
    this.emit('changed');
  }

  async #reloadAll(): Promise<void> {
    try {
      for (const node of await this.#store.listNodes()) await this.#apply(node);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not reload node records');
    }
  }

  async #reload(id: string): Promise<void> {
    try {
      const node = await this.#store.getNodeById(id);
      if (node) await this.#apply(node);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, id }, 'could not reload a node record');
    }
  }

  /** Takes a record another replica changed: approval admits a waiting agent, revocation ends its link here. */
  async #apply(fresh: NodeRecord): Promise<void> {
    const known = this.#byId.get(fresh.id);
    if (known && known.state === fresh.state && known.name === fresh.name && known.revokedAt === fresh.revokedAt) return;
    const link = this.#links.get(fresh.id);
    const record: NodeRecord = { ...fresh, lastSeen: link ? link.lastSeen : (known?.lastSeen ?? fresh.lastSeen) };
    const previous = this.#idByName.get(fresh.name);
    if (previous !== undefined && previous !== fresh.id && fresh.state !== 'revoked') this.#byId.delete(previous);
    this.#byId.set(fresh.id, record);
    if (fresh.state !== 'revoked' || previous === undefined || previous === fresh.id) this.#idByName.set(fresh.name, fresh.id);
    if (!known && fresh.state !== 'revoked') await this.#inventory.load(fresh.id);
    if (fresh.state === 'active') {
      this.#pending.get(fresh.id)?.admit();
      this.#pending.delete(fresh.id);
    } else if (fresh.state === 'revoked') {
      const reason = new DockfleetError('node_revoked', `node ${fresh.name} was revoked`);
      this.#pending.get(fresh.id)?.reject(reason);
      this.#pending.delete(fresh.id);
      link?.close({ t: 'error', code: reason.code, message: reason.message });
      this.#inventory.drop(fresh.id);
    }
    this.emit('changed');
  }

  /** Where node views find each node's labels (the stacks' NodeLabels). */
  showLabels(labelsOf: (name: string) => Record<string, string>): void {
    this.#labelsOf = labelsOf;
  }

  list(): NodeView[] {
    return [...this.#byId.values()].sort((a, b) => byName.compare(a.name, b.name)).map((n) => this.view(n));
  }

  view(node: NodeRecord): NodeView {
    const link = this.#links.get(node.id);
    const status = this.status(node);
    // Held elsewhere until a moment ago: what that holder's link said stops showing now, not
    // when the owners event comes round (only then: at 10,000 nodes a list builds every view).
    if (!link && status !== 'online') this.#feed?.refresh(node.id);
    const lastSeen = link ? link.lastSeen : node.lastSeen;
    const engine = this.#inventory.engine(node.id);
    const facts = node.facts;
    return {
      name: node.name,
      status,
      lastSeen: lastSeen === null ? null : new Date(lastSeen).toISOString(),
      engine: { version: facts?.version ?? null, ...engine },
      agentVersion: link?.agentVersion ?? this.#feed?.agentVersion(node.id) ?? null,
      host: facts ? { os: facts.os, arch: facts.arch, cpus: facts.cpus, memoryBytes: facts.memoryBytes, hostname: facts.hostname } : null,
      counts: this.#inventory.counts(node.id),
      labels: this.#labelsOf(node.name),
      policy: this.#policies.get(node.id) ?? null,
      hostAudit: this.#auditHeads.get(node.id) ?? null,
      usage: link ? (this.#usage.get(node.id) ?? null) : (this.#feed?.usage(node.id) ?? null),
    };
  }

  /** Takes a freshly authenticated link; a previous link of the same node is replaced. */
  attach(link: AgentLink): void {
    const previous = this.#links.get(link.nodeId);
    this.#links.set(link.nodeId, link);
    if (previous) previous.close({ t: 'error', code: 'replaced', message: 'another connection of this node took over' });
    link.on('inventory', (msg) => void this.#onInventory(link.nodeId, msg));
    link.once('close', () => {
      const epoch = this.#claims.get(link);
      if (epoch !== undefined) void this.#cluster?.release(link.nodeId, epoch).catch(() => {});
      if (this.#links.get(link.nodeId) !== link) return;
      this.#links.delete(link.nodeId);
      this.#usage.delete(link.nodeId);
      this.#inventory.forgetEngine(link.nodeId);
      void this.#touch(link.nodeId, link.lastSeen);
      this.#log.info({ node: link.nodeName }, 'node offline');
      this.emit('changed');
    });
    this.#log.info({ node: link.nodeName }, 'node online');
    void this.#claim(link);
    this.emit('changed');
    this.emit('linked', link);
  }

  /** Parks a pending node's connection until an admin approves or revokes it. */
  waitForApproval(nodeId: string, signal: AbortSignal): Promise<void> {
    this.#pending.get(nodeId)?.reject(new DockfleetError('replaced', 'another connection of this node is waiting'));
    return new Promise((resolve, reject) => {
      const waiter: PendingWaiter = { admit: resolve, reject };
      this.#pending.set(nodeId, waiter);
      signal.addEventListener(
        'abort',
        () => {
          if (this.#pending.get(nodeId) === waiter) this.#pending.delete(nodeId);
          reject(new DockfleetError('handshake_timeout', 'connection closed while pending'));
        },
        { once: true },
      );
    });
  }

  async approve(name: string): Promise<NodeRecord> {
    const node = this.require(name);
    if (node.state !== 'pending') throw new DockfleetError('invalid_state', `node ${name} is ${this.status(node)}, not pending`);
    const at = Date.now();
    await this.#store.setNodeState(node.id, 'active', at);
    const updated: NodeRecord = { ...node, state: 'active', approvedAt: at };
    this.#byId.set(node.id, updated);
    this.#pending.get(node.id)?.admit();
    this.#pending.delete(node.id);
    this.#cluster?.publish('nodes.changed', node.id);
    this.emit('changed');
    return updated;
  }

  async revoke(name: string): Promise<NodeRecord> {
    const node = this.require(name);
    if (node.state === 'revoked') throw new DockfleetError('invalid_state', `node ${name} is already revoked`);
    const at = Date.now();
    await this.#store.setNodeState(node.id, 'revoked', at);
    const updated: NodeRecord = { ...node, state: 'revoked', revokedAt: at };
    this.#byId.set(node.id, updated);
    const reason = new DockfleetError('node_revoked', `node ${name} was revoked`);
    this.#pending.get(node.id)?.reject(reason);
    this.#pending.delete(node.id);
    this.#links.get(node.id)?.close({ t: 'error', code: reason.code, message: reason.message });
    this.#inventory.drop(node.id);
    this.#cluster?.publish('nodes.changed', node.id);
    this.#log.info({ node: name }, 'node revoked');
    this.emit('changed');
    return updated;
  }

  async flushLastSeen(): Promise<void> {
    const seen = [...this.#links.values()].map((l) => ({ id: l.nodeId, lastSeen: l.lastSeen }));
    for (const s of seen) {
      const node = this.#byId.get(s.id);
      if (node) node.lastSeen = s.lastSeen;
    }
    if (seen.length > 0) await this.#store.touchNodes(seen).catch((err) => this.#log.error({ err }, 'could not persist lastSeen'));
  }

  /** Closes every link (hub shutdown) and persists what is pending. */
  async close(): Promise<void> {
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    this.#feed?.close();
    await this.flushLastSeen();
    for (const waiter of this.#pending.values()) waiter.reject(new DockfleetError('hub_unreachable', 'hub is shutting down'));
    for (const link of this.#links.values()) link.close();
    await this.#inventory.flush();
  }

  async #touch(nodeId: string, lastSeen: number): Promise<void> {
    const node = this.#byId.get(nodeId);
    if (node) node.lastSeen = lastSeen;
    await this.#store.touchNodes([{ id: nodeId, lastSeen }]).catch((err) => this.#log.error({ err }, 'could not persist lastSeen'));
  }

  async #onInventory(nodeId: string, msg: InventoryMessage): Promise<void> {
    if (msg.t === 'section') return this.#inventory.setSection(nodeId, msg.section, msg.items, msg.at);
    if (msg.t === 'auditHead') return void this.#auditHeads.set(nodeId, { seq: msg.seq, hash: msg.hash });
    if (msg.t === 'hostUsage') return void this.#usage.set(nodeId, { cpuBusyRatio: msg.cpuBusyRatio ?? null, memoryAvailableBytes: msg.memoryAvailableBytes ?? null, at: new Date().toISOString() });
    if (msg.t === 'policy') {
      this.#policies.set(nodeId, msg.summary);
      this.emit('changed');
      return;
    }
    if (msg.state === 'down') return this.#inventory.setEngine(nodeId, { state: 'down', error: msg.error });
    this.#inventory.setEngine(nodeId, { state: 'up' });
    const node = this.#byId.get(nodeId);
    if (node && JSON.stringify(node.facts) !== JSON.stringify(msg.facts)) {
      node.facts = msg.facts;
      await this.#store.setNodeFacts(nodeId, msg.facts).catch((err) => this.#log.error({ err }, 'could not persist engine facts'));
    }
  }
}
