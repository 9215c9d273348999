/**
 * Who the nodes are and how they are: durable records from the store, live links from the
 * gateway, inventory from the cache. Status is derived, never stored: revoked and pending come
 * from the record, online/offline from whether a link is up.
 */
import { EventEmitter } from 'node:events';
import { DockfleetError } from '../protocol/errors.ts';
import type { NodeStatus, NodeView } from '../protocol/api.ts';
import { DEAD_AFTER_MS } from '../protocol/heartbeat.ts';
import type { InventoryMessage } from '../protocol/inventory.ts';
import type { PolicySummary } from '../protocol/policy-summary.ts';
import type { NodeRecord, Store } from '../store/store.ts';
import type { Logger } from '../lib/logger.ts';
import type { AgentLink } from './gateway/agent-link.ts';
import type { InventoryCache } from './inventory-cache.ts';

const LAST_SEEN_FLUSH_MS = 10_000;
const SWEEP_MS = 1_000;

interface PendingWaiter {
  admit: () => void;
  reject: (reason: DockfleetError) => void;
}

export interface RegistryEvents {
  /** Something any node view shows may have changed (status, record, facts). */
  changed: [];
  /** A node's link is up (attached; any link it replaced is closed already). */
  linked: [link: AgentLink];
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
  #labelsOf: (name: string) => Record<string, string> = () => ({});
  #flushTimer: NodeJS.Timeout | null = null;
  #sweepTimer: NodeJS.Timeout | null = null;

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

  /** One timer for every link: a link silent for DEAD_AFTER_MS (no ping, no message) is dead. */
  #sweepSilentLinks(): void {
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
    this.emit('changed');
  }

  byName(name: string): NodeRecord | null {
    const id = this.#idByName.get(name);
    return id === undefined ? null : (this.#byId.get(id) ?? null);
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

  link(nodeId: string): AgentLink | null {
    return this.#links.get(nodeId) ?? null;
  }

  /** The live link of an online node, or a node_offline/node_not_found error. */
  requireLink(name: string): AgentLink {
    const node = this.require(name);
    const link = this.#links.get(node.id);
    if (!link) throw new DockfleetError('node_offline', `node ${name} is ${this.status(node)}`);
    return link;
  }

  status(node: NodeRecord): NodeStatus {
    if (node.state === 'revoked') return 'revoked';
    if (node.state === 'pending') return 'pending';
    return this.#links.has(node.id) ? 'online' : 'offline';
  }

  /** Where node views find each node's labels (the stacks' NodeLabels). */
  showLabels(labelsOf: (name: string) => Record<string, string>): void {
    this.#labelsOf = labelsOf;
  }

  list(): NodeView[] {
    return [...this.#byId.values()].sort((a, b) => a.name.localeCompare(b.name)).map((n) => this.view(n));
  }

  view(node: NodeRecord): NodeView {
    const link = this.#links.get(node.id);
    const lastSeen = link ? link.lastSeen : node.lastSeen;
    const engine = this.#inventory.engine(node.id);
    const facts = node.facts;
    return {
      name: node.name,
      status: this.status(node),
      lastSeen: lastSeen === null ? null : new Date(lastSeen).toISOString(),
      engine: { version: facts?.version ?? null, ...engine },
      agentVersion: link?.agentVersion ?? null,
      host: facts ? { os: facts.os, arch: facts.arch, cpus: facts.cpus, memoryBytes: facts.memoryBytes, hostname: facts.hostname } : null,
      counts: this.#inventory.counts(node.id),
      labels: this.#labelsOf(node.name),
      policy: this.#policies.get(node.id) ?? null,
      hostAudit: this.#auditHeads.get(node.id) ?? null,
    };
  }

  /** Takes a freshly authenticated link; a previous link of the same node is replaced. */
  attach(link: AgentLink): void {
    const previous = this.#links.get(link.nodeId);
    this.#links.set(link.nodeId, link);
    if (previous) previous.close({ t: 'error', code: 'replaced', message: 'another connection of this node took over' });
    link.on('inventory', (msg) => void this.#onInventory(link.nodeId, msg));
    link.once('close', () => {
      if (this.#links.get(link.nodeId) !== link) return;
      this.#links.delete(link.nodeId);
      this.#inventory.forgetEngine(link.nodeId);
      void this.#touch(link.nodeId, link.lastSeen);
      this.#log.info({ node: link.nodeName }, 'node offline');
      this.emit('changed');
    });
    this.#log.info({ node: link.nodeName }, 'node online');
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
