/**
 * Live views across replicas (issue 17): every replica shows every agent as if it held its link.
 *
 * As holder, a replica passes on over the bus what its agents report that views need — inventory
 * sections, engine up/down with its facts, agent version, host use, policy summary, audit head —
 * coalesced like the agent's own stream: per node only which kinds changed wait (sections are read
 * from the InventoryCache when sent), one node message at a time goes out, so a burst costs one
 * message per node and memory stays bounded. Each message names the holder and its epoch. When
 * its claim lands (or is renewed) it sends the node whole; a replica that starts, whose bus comes
 * back, or whose own link to a node closed asks, and the holders send it their nodes whole. Docker
 * events its FleetEvents follows go out in batches (bounded; the oldest dropped when a bus stalls).
 *
 * As receiver, a replica applies a holder's message to its InventoryCache and node views as its
 * own link would (memory only: the holder persists). It asks the holders for everything when it
 * starts or its bus comes back, and for single nodes (coalesced) when a link of its own closes;
 * a holder answers each asker one pass at a time. Its data counts while ownership says that
 * replica holds the node at that epoch (or a newer epoch its copy has not seen yet): when the
 * holder changes or the node goes offline, the old holder's engine state, agent version and host
 * use stop showing, and a message at an older epoch than one already taken is ignored. A node
 * whose link is held here is never overwritten by what another replica says of it.
 */
import type { Logger } from '../../lib/logger.ts';
import type { HostUsage } from '../../protocol/api.ts';
import type { FleetEvent } from '../../protocol/fleet-events.ts';
import { INVENTORY_SECTIONS, type InventoryMessage, type InventorySection } from '../../protocol/inventory.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { EngineState, InventoryCache } from '../inventory-cache.ts';
import type { RegistryCluster } from '../node-registry.ts';
import { ViewJoiner, encodeView, type ViewMessage } from './view-wire.ts';

const SUBJECT = 'views';
const ASK = 'views.ask';
const EVENTS = 'views.events';
const forReplica = (id: string): string => `views.for.${id}`;
/** Changes wait this long to be sent together (and coalesce). */
const FLUSH_MS = 50;
/** Docker events waiting to go out, at most (the oldest are dropped beyond). */
const MAX_PENDING_EVENTS = 2_000;
const EVENT_BATCH = 500;
/** Nodes asked for by name wait this long to go out together (a storm closes thousands of links). */
const ASK_COALESCE_MS = 250;
/** After the bus is back, the ask is repeated once this much later. */
const REASK_MS = 1_000;
/** Node ids per ask message (well under the bus's 1 MiB). */
const ASK_MAX_NODES = 5_000;

type Kind = InventorySection | 'engine' | 'policy' | 'auditHead' | 'hostUsage';
type EventBody = Omit<FleetEvent, 'seq'>;

/** What the feed needs of the node registry (node-registry.ts). */
export interface FeedRegistry {
  link(nodeId: string): AgentLink | null;
  on(event: 'linked', listener: (link: AgentLink) => void): unknown;
  /** A holder elsewhere reported this (policy, audit head, engine facts): show it (memory only). */
  takeRemoteReport(nodeId: string, msg: InventoryMessage): void;
  /** Something a node view shows changed (agent version, host use, engine state). */
  remoteChanged(): void;
  /** Docker events another replica's agent reported. */
  remoteEvents(events: EventBody[]): void;
}

/** What another replica's link to a node last said (per node, the newest holder's only). */
interface Remote {
  replica: string;
  epoch: number;
  agentVersion: string;
  engine: EngineState | null;
  usage: HostUsage | null;
  /** Whether it shows now (ownership agrees), as last applied to the InventoryCache. */
  counting: boolean;
}

export class ViewFeed {
  readonly #cluster: RegistryCluster;
  readonly #registry: FeedRegistry;
  readonly #inventory: InventoryCache;
  readonly #log: Logger;
  readonly #joiner = new ViewJoiner();
  /** Holder side: per local node, the kinds changed since sent; the last small reports; the epoch sent whole at. */
  readonly #dirty = new Map<string, Set<Kind>>();
  readonly #last = new Map<string, Map<Kind, InventoryMessage>>();
  readonly #sentWhole = new Map<string, number>();
  #events: EventBody[] = [];
  #droppedEvents = 0;
  #timer: NodeJS.Timeout | null = null;
  #sending = false;
  #seq = 0;
  /** Nodes to ask their holders about, waiting to go out together. */
  readonly #askFor = new Set<string>();
  #askTimer: NodeJS.Timeout | null = null;
  /** Holder side: per asking replica, what it still waits for (everything, or these nodes);
   * one answer at a time per asker, so asks that come in a burst cost one pass. */
  readonly #owed = new Map<string, { whole: boolean; nodes: Set<string> }>();
  /** Receiver side. */
  readonly #remotes = new Map<string, Remote>();
  #closed = false;

  /** `held`: the links already here when the replica joined (what they reported before is sent as the cache has it). */
  constructor(cluster: RegistryCluster, registry: FeedRegistry, inventory: InventoryCache, log: Logger, held: Iterable<AgentLink> = []) {
    this.#cluster = cluster;
    this.#registry = registry;
    this.#inventory = inventory;
    this.#log = log.child({ part: 'view-feed' });
    registry.on('linked', (link) => this.#hold(link));
    for (const link of held) this.#hold(link);
    cluster.on('owners', (nodes) => {
      this.#schedule(); // a claim landed or moved: held nodes not yet sent whole at their epoch go now
      for (const nodeId of nodes ?? this.#remotes.keys()) this.refresh(nodeId);
    });
    cluster.on('up', () => {
      // Replicas come back one by one, and what one sends before another's subscriptions are in
      // again is lost: ask now and once more shortly, and send everything held here whole (one
      // whose bus came back before ours asked while we could not hear it).
      this.ask();
      setTimeout(() => this.#cluster.busUp && !this.#closed && this.ask(), REASK_MS).unref();
      this.#sentWhole.clear();
      this.#schedule();
    });
    cluster.listen(SUBJECT, (data) => void this.#receive(data));
    cluster.listen(forReplica(cluster.replicaId), (data) => void this.#receive(data));
    cluster.listen(EVENTS, (data) => void this.#receive(data));
    cluster.listen(ASK, (data) => {
      // `ASKER` (everything) or `ASKER\nNODE,NODE,…` (these nodes).
      const [asker = '', nodes] = new TextDecoder().decode(data).split('\n');
      if (asker !== '' && asker !== cluster.replicaId) this.#owe(asker, nodes === undefined ? null : nodes.split(',').filter(Boolean));
    });
    this.ask();
  }

  /** Asks every holder for the nodes it holds, whole (at start, when the bus is back). */
  ask(): void {
    this.#cluster.send(ASK, new TextEncoder().encode(this.#cluster.replicaId));
  }

  /** Asks whoever holds `nodeId` for it, whole: together with the others asked for meanwhile. */
  #askAbout(nodeId: string): void {
    this.#askFor.add(nodeId);
    if (this.#askTimer || this.#closed) return;
    this.#askTimer = setTimeout(() => {
      this.#askTimer = null;
      const nodes = [...this.#askFor];
      this.#askFor.clear();
      for (let i = 0; i < nodes.length; i += ASK_MAX_NODES) {
        this.#cluster.send(ASK, new TextEncoder().encode(`${this.#cluster.replicaId}\n${nodes.slice(i, i + ASK_MAX_NODES).join(',')}`));
      }
    }, ASK_COALESCE_MS);
    this.#askTimer.unref();
  }

  /** The agent version another replica's link reported, while it counts. */
  agentVersion(nodeId: string): string | null {
    const r = this.#remotes.get(nodeId);
    return r?.counting ? r.agentVersion : null;
  }

  /** The host use another replica's link reported, while it counts. */
  usage(nodeId: string): HostUsage | null {
    const r = this.#remotes.get(nodeId);
    return r?.counting ? r.usage : null;
  }

  /** A Docker event from a link held here: passed on to the others. */
  shareEvent(event: EventBody): void {
    if (this.#closed) return;
    if (this.#events.length >= MAX_PENDING_EVENTS) {
      this.#events.shift();
      this.#droppedEvents++;
    }
    this.#events.push(event);
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#askTimer) clearTimeout(this.#askTimer);
    this.#askTimer = null;
  }

  // Holder side.

  #hold(link: AgentLink): void {
    const nodeId = link.nodeId;
    this.#last.set(nodeId, new Map());
    this.#sentWhole.delete(nodeId);
    this.#remotes.delete(nodeId); // our own link is the truth now
    link.on('inventory', (msg) => {
      if (this.#registry.link(nodeId) !== link) return;
      const kind: Kind = msg.t === 'section' ? msg.section : msg.t;
      if (msg.t !== 'section') this.#last.get(nodeId)?.set(kind, msg);
      this.#mark(nodeId, kind);
    });
    link.once('close', () => {
      if (this.#registry.link(nodeId)) return; // replaced by a newer link here
      this.#last.delete(nodeId);
      this.#dirty.delete(nodeId);
      this.#sentWhole.delete(nodeId);
      // If another replica holds it now, what it sent while this link was closing was not applied:
      // ask for this node again (not for everything: a storm closes thousands of links at once,
      // and every replica answering every node for each was what ran one out of memory).
      this.#askAbout(nodeId);
    });
  }

  #mark(nodeId: string, kind: Kind): void {
    let dirty = this.#dirty.get(nodeId);
    if (!dirty) this.#dirty.set(nodeId, (dirty = new Set()));
    dirty.add(kind);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer || this.#sending || !this.#cluster.busUp) return; // bus down: the others ask when it is back
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#flush();
    }, FLUSH_MS);
    this.#timer.unref();
  }

  async #flush(): Promise<void> {
    this.#sending = true;
    try {
      for (const nodeId of this.#last.keys()) {
        const link = this.#registry.link(nodeId);
        const epoch = this.#cluster.localEpoch(nodeId);
        if (!link || epoch === undefined) continue; // not claimed yet: sent once it is (owners event)
        const whole = this.#sentWhole.get(nodeId) !== epoch;
        const dirty = this.#dirty.get(nodeId);
        if (!whole && !dirty) continue;
        this.#dirty.delete(nodeId);
        if (await this.#sendNode(SUBJECT, link, epoch, whole ? null : dirty!)) this.#sentWhole.set(nodeId, epoch);
        else if (!whole) for (const k of dirty!) this.#mark(nodeId, k); // bus down: the ask when it is back mends it anyway
      }
      while (this.#events.length > 0) {
        const batch = this.#events.splice(0, EVENT_BATCH);
        if (this.#droppedEvents > 0) {
          this.#log.warn({ dropped: this.#droppedEvents }, 'the bus could not keep up: some Docker events were not passed on to the other replicas');
          this.#droppedEvents = 0;
        }
        await this.#send(EVENTS, { kind: 'events', from: this.#cluster.replicaId, events: batch });
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not pass views on');
    } finally {
      this.#sending = false;
    }
    if ([...this.#dirty.keys()].some((id) => this.#last.has(id)) || this.#events.length > 0) this.#schedule();
  }

  /** Notes what `asker` asked for (null: every node held here) and answers it unless an answer
   * to it is under way, which then takes this ask along. */
  #owe(asker: string, nodes: string[] | null): void {
    const owed = this.#owed.get(asker);
    if (owed) {
      if (nodes === null) owed.whole = true;
      else for (const n of nodes) owed.nodes.add(n);
      return;
    }
    this.#owed.set(asker, { whole: nodes === null, nodes: new Set(nodes ?? []) });
    void this.#answer(asker);
  }

  /** The nodes held here that `asker` asked for, whole, until it is owed nothing more. */
  async #answer(asker: string): Promise<void> {
    for (;;) {
      const owed = this.#owed.get(asker);
      if (!owed || this.#closed || (!owed.whole && owed.nodes.size === 0)) break;
      const nodes = owed.whole ? [...this.#last.keys()] : [...owed.nodes].filter((id) => this.#last.has(id));
      owed.whole = false;
      owed.nodes.clear();
      for (const nodeId of nodes) {
        const link = this.#registry.link(nodeId);
        const epoch = this.#cluster.localEpoch(nodeId);
        if (link && epoch !== undefined) await this.#sendNode(forReplica(asker), link, epoch, null).catch(() => false);
      }
    }
    this.#owed.delete(asker);
  }

  /** Sends one node's reports: `kinds` only, or everything (null). */
  async #sendNode(subject: string, link: AgentLink, epoch: number, kinds: Set<Kind> | null): Promise<boolean> {
    const nodeId = link.nodeId;
    const last = this.#last.get(nodeId) ?? new Map<Kind, InventoryMessage>();
    const reports: InventoryMessage[] = [];
    const wanted = kinds ?? new Set<Kind>([...INVENTORY_SECTIONS, ...last.keys()]);
    for (const kind of wanted) {
      if ((INVENTORY_SECTIONS as readonly string[]).includes(kind)) {
        const section = this.#inventory.section(nodeId, kind as InventorySection);
        if (section) reports.push({ t: 'section', section: kind as InventorySection, items: section.items as Array<Record<string, unknown>>, at: section.updatedAt });
      } else {
        const msg = last.get(kind);
        if (msg) reports.push(msg);
      }
    }
    return this.#send(subject, { kind: 'node', from: this.#cluster.replicaId, node: nodeId, epoch, agentVersion: link.agentVersion, full: kinds === null, reports });
  }

  async #send(subject: string, message: ViewMessage): Promise<boolean> {
    const parts = await encodeView(message, this.#cluster.maxPayload, `${this.#cluster.replicaId}:${++this.#seq}`);
    for (const part of parts) if (!this.#cluster.send(subject, part)) return false;
    return true;
  }

  // Receiver side.

  async #receive(data: Uint8Array): Promise<void> {
    const message = await this.#joiner.take(data);
    if (!message || this.#closed || message.from === this.#cluster.replicaId) return;
    if (message.kind === 'events') return this.#registry.remoteEvents(message.events);
    const nodeId = message.node;
    let remote = this.#remotes.get(nodeId);
    if (remote && message.epoch < remote.epoch) return; // an older holder's, superseded
    const owner = this.#cluster.owner(nodeId);
    if (owner.state === 'held' && message.epoch < owner.epoch) return;
    if (!remote || message.epoch > remote.epoch || remote.replica !== message.from) {
      remote = { replica: message.from, epoch: message.epoch, agentVersion: message.agentVersion, engine: null, usage: null, counting: false };
      this.#remotes.set(nodeId, remote);
    }
    remote.agentVersion = message.agentVersion;
    const mine = this.#registry.link(nodeId) !== null;
    for (const report of message.reports) {
      if (report.t === 'section') {
        if (!mine) this.#inventory.showSection(nodeId, report.section, report.items, report.at);
      } else if (report.t === 'engine') {
        remote.engine = report.state === 'up' ? { state: 'up' } : { state: 'down', error: report.error };
        if (report.state === 'up' && !mine) this.#registry.takeRemoteReport(nodeId, report);
      } else if (report.t === 'hostUsage') {
        remote.usage = { cpuBusyRatio: report.cpuBusyRatio ?? null, memoryAvailableBytes: report.memoryAvailableBytes ?? null, at: new Date().toISOString() };
      } else if (!mine) this.#registry.takeRemoteReport(nodeId, report);
    }
    this.refresh(nodeId);
    this.#registry.remoteChanged();
  }

  /** Shows or stops showing a remote's engine state, as ownership now says (on each change of
   * owners, and before a node's view is read: the change is told a moment after it is seen). */
  refresh(nodeId: string): void {
    const remote = this.#remotes.get(nodeId);
    if (!remote) return;
    if (this.#registry.link(nodeId)) {
      this.#remotes.delete(nodeId);
      return;
    }
    const owner = this.#cluster.owner(nodeId);
    // Held by it at its epoch, or at a newer epoch than our copy of ownership has seen yet.
    const counts = owner.state === 'held' && ((owner.replica === remote.replica && owner.epoch === remote.epoch) || owner.epoch < remote.epoch);
    const engine: EngineState = remote.engine ?? { state: 'unknown' };
    if (counts && JSON.stringify(this.#inventory.engine(nodeId)) !== JSON.stringify(engine)) this.#inventory.setEngine(nodeId, engine);
    else if (!counts && remote.counting) this.#inventory.forgetEngine(nodeId);
    if (counts !== remote.counting) {
      remote.counting = counts;
      this.#registry.remoteChanged();
    }
  }
}
