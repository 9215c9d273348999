/**
 * The hub's stats: who watches what, one agent stream per watched node, and the recent points.
 * Pages watch containers (and node hosts) by reference count; the set per node is sent to its
 * agent by (re)opening the node's stats stream, a moment after the set changes so a page that
 * scrolls reopens once, not per row. No watcher on a node: its stream is closed, and the agent
 * stops sampling. Memory is bounded: a ring of RING_POINTS per container and host, rings only
 * for what is watched (dropped STALE_MS after the last watcher leaves), and a cap on watched
 * containers per node (MAX_WATCHED_PER_NODE). With hub replicas, a node whose agent another
 * replica holds is streamed through that replica (NodeRegistry.requireLink → RemoteLink).
 */
import http2 from 'node:http2';
import type { Logger } from '../../lib/logger.ts';
import { NdjsonSplitter } from '../../lib/ndjson.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { MAX_WATCHED_PER_NODE, statsLine, statsQuery, type ContainerPoint, type HostPoint } from '../../protocol/stats.ts';
import type { AgentResponse } from '../gateway/agent-link.ts';
import type { NodeLink, NodeRegistry } from '../node-registry.ts';
import { StatsRing } from './stats-ring.ts';

/** Two minutes at one point a second. */
export const RING_POINTS = 120;
const REOPEN_DEBOUNCE_MS = 100;
const RETRY_MS = 2_000;
const STALE_MS = 60_000;
const MAX_LINE = 1024 * 1024;

export type TimedContainerPoint = ContainerPoint & { at: number };
export type TimedHostPoint = HostPoint & { at: number };

/** What one tick brought for one node, as a watcher sees it. */
export interface NodeTick {
  node: string;
  at: number;
  host?: HostPoint;
  containers: ContainerPoint[];
}

export interface StatsWatcher {
  /** Containers by node name → ids; `hosts`: node names whose host use is wanted. */
  containers: ReadonlyMap<string, ReadonlySet<string>>;
  hosts: ReadonlySet<string>;
  onTick(tick: NodeTick): void;
}

interface NodeWatch {
  name: string;
  ids: Map<string, number>;
  hosts: number;
  /** The query the open stream carries ('' when none is open). */
  openQuery: string;
  response: AgentResponse | null;
  timer: NodeJS.Timeout | null;
}

export class StatsHub {
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #nodes = new Map<string, NodeWatch>();
  readonly #watchers = new Set<StatsWatcher>();
  readonly #containerRings = new Map<string, { ring: StatsRing<TimedContainerPoint>; lastWatched: number }>();
  readonly #hostRings = new Map<string, { ring: StatsRing<TimedHostPoint>; lastWatched: number }>();
  readonly #sweep: NodeJS.Timeout;
  #closed = false;

  constructor(registry: NodeRegistry, log: Logger) {
    this.#registry = registry;
    this.#log = log;
    registry.on('linked', (link) => {
      const w = this.#nodes.get(link.nodeName);
      if (w) this.#schedule(w, true);
    });
    this.#sweep = setInterval(() => this.#dropStale(), STALE_MS);
    this.#sweep.unref();
  }

  /** Nodes with an open agent stream now (diagnostics and tests). */
  get openStreams(): string[] {
    return [...this.#nodes.values()].filter((w) => w.response).map((w) => w.name);
  }

  /** Registers a watcher; the returned function unregisters it. */
  watch(watcher: StatsWatcher): () => void {
    this.#watchers.add(watcher);
    for (const [node, ids] of watcher.containers) {
      const w = this.#node(node);
      for (const id of ids) w.ids.set(id, (w.ids.get(id) ?? 0) + 1);
      this.#schedule(w);
    }
    for (const node of watcher.hosts) {
      const w = this.#node(node);
      w.hosts++;
      this.#schedule(w);
    }
    return () => {
      if (!this.#watchers.delete(watcher)) return;
      const now = Date.now();
      for (const [node, ids] of watcher.containers) {
        const w = this.#nodes.get(node);
        if (!w) continue;
        for (const id of ids) {
          const left = (w.ids.get(id) ?? 1) - 1;
          if (left > 0) w.ids.set(id, left);
          else w.ids.delete(id);
          const r = this.#containerRings.get(`${node}/${id}`);
          if (r) r.lastWatched = now;
        }
        this.#schedule(w);
      }
      for (const node of watcher.hosts) {
        const w = this.#nodes.get(node);
        if (!w) continue;
        w.hosts = Math.max(0, w.hosts - 1);
        const r = this.#hostRings.get(node);
        if (r) r.lastWatched = now;
        this.#schedule(w);
      }
    };
  }

  /** The recent points of one container (oldest first). */
  containerHistory(node: string, id: string): TimedContainerPoint[] {
    return this.#containerRings.get(`${node}/${id}`)?.ring.toArray() ?? [];
  }

  hostHistory(node: string): TimedHostPoint[] {
    return this.#hostRings.get(node)?.ring.toArray() ?? [];
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const w of this.#nodes.values()) {
      if (w.timer) clearTimeout(w.timer);
      this.#closeStream(w);
    }
    this.#nodes.clear();
    this.#watchers.clear();
  }

  #node(name: string): NodeWatch {
    let w = this.#nodes.get(name);
    if (!w) {
      w = { name, ids: new Map(), hosts: 0, openQuery: '', response: null, timer: null };
      this.#nodes.set(name, w);
    }
    return w;
  }

  #schedule(w: NodeWatch, force = false): void {
    if (this.#closed) return;
    if (force) this.#closeStream(w);
    if (w.timer) return;
    w.timer = setTimeout(() => {
      w.timer = null;
      void this.#apply(w);
    }, REOPEN_DEBOUNCE_MS);
  }

  /** Makes the node's agent stream carry exactly the current set (or closes it). */
  async #apply(w: NodeWatch): Promise<void> {
    const ids = [...w.ids.keys()].slice(0, MAX_WATCHED_PER_NODE);
    if (ids.length === 0 && w.hosts === 0) {
      this.#closeStream(w);
      this.#nodes.delete(w.name);
      return;
    }
    const query = statsQuery(ids.sort(), w.hosts > 0);
    if (w.response && w.openQuery === query) return;
    const node = this.#registry.byName(w.name);
    const local = node ? this.#registry.link(node.id) : null;
    this.#closeStream(w);
    // With replicas, a node held by another replica streams through it (a RemoteLink); one not
    // reachable now is tried again a while later (its link may come up on any replica).
    const link = local ?? this.#reachable(w.name);
    if (!link) {
      if (node && this.#registry.clustered) this.#retryLater(w);
      return; // opened again when the node's link comes up here ('linked')
    }
    w.openQuery = query;
    let response: AgentResponse;
    try {
      response = await link.request({ method: 'GET', path: query, timeoutMs: 10_000 });
    } catch (err) {
      w.openQuery = '';
      this.#log.debug({ node: w.name, err }, 'stats stream did not open');
      this.#retryLater(w);
      return;
    }
    // The set changed again while it opened, or nobody watches any more.
    if (w.openQuery !== query || this.#nodes.get(w.name) !== w) {
      response.stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    if (response.status !== 200) {
      response.stream.close(http2.constants.NGHTTP2_CANCEL);
      w.openQuery = '';
      this.#log.info({ node: w.name, status: response.status }, 'agent has no stats stream');
      return;
    }
    w.response = response;
    const splitter = new NdjsonSplitter(MAX_LINE);
    response.stream.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch {
        response.stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      for (const text of lines) this.#onLine(w.name, text);
    });
    response.stream.on('error', () => {});
    response.stream.once('close', () => {
      if (w.response !== response) return;
      w.response = null;
      w.openQuery = '';
      this.#retryLater(w);
    });
  }

  #reachable(name: string): NodeLink | null {
    try {
      return this.#registry.requireLink(name);
    } catch {
      return null;
    }
  }

  #retryLater(w: NodeWatch): void {
    if (this.#closed || this.#nodes.get(w.name) !== w || w.timer) return;
    w.timer = setTimeout(() => {
      w.timer = null;
      void this.#apply(w);
    }, RETRY_MS);
    w.timer.unref();
  }

  #closeStream(w: NodeWatch): void {
    const r = w.response;
    w.response = null;
    w.openQuery = '';
    if (r && !r.stream.closed) r.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  #onLine(node: string, text: string): void {
    const parsed = parseJsonLine(text);
    const line = parsed.ok ? statsLine.safeParse(parsed.value) : null;
    if (!line?.success) return;
    const { at, host, containers } = line.data;
    const now = Date.now();
    for (const p of containers) {
      const key = `${node}/${p.id}`;
      let r = this.#containerRings.get(key);
      if (!r) this.#containerRings.set(key, (r = { ring: new StatsRing(RING_POINTS), lastWatched: now }));
      r.ring.push({ ...p, at });
    }
    if (host) {
      let r = this.#hostRings.get(node);
      if (!r) this.#hostRings.set(node, (r = { ring: new StatsRing(RING_POINTS), lastWatched: now }));
      r.ring.push({ ...host, at });
    }
    for (const watcher of this.#watchers) {
      const ids = watcher.containers.get(node);
      const wantsHost = watcher.hosts.has(node);
      if (!ids && !wantsHost) continue;
      const mine = ids ? containers.filter((p) => ids.has(p.id)) : [];
      if (mine.length === 0 && !(wantsHost && host)) continue;
      watcher.onTick({ node, at, containers: mine, ...(wantsHost && host ? { host } : {}) });
    }
  }

  /** Rings nobody has watched for STALE_MS are dropped. */
  #dropStale(): void {
    const cutoff = Date.now() - STALE_MS;
    for (const [key, r] of this.#containerRings) {
      const [node, id] = key.split('/') as [string, string];
      if (r.lastWatched < cutoff && !this.#nodes.get(node)?.ids.has(id)) this.#containerRings.delete(key);
    }
    for (const [node, r] of this.#hostRings) {
      if (r.lastWatched < cutoff && !this.#nodes.get(node)?.hosts) this.#hostRings.delete(node);
    }
  }
}
