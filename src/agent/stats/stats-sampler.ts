/**
 * Samples what the hub's open stats streams name, and nothing else: while at least one stream is
 * open, each watched container has an engine stats stream of its own (container-feed.ts), and a
 * timer gathers, once a tick, the points that arrived since the last one and hands the tick's
 * line to every stream. Memory is bounded: one feed per watched container (at most
 * MAX_WATCHED_PER_NODE), closed when no stream names it any more. When the last stream closes,
 * the feeds are kept LINGER_MS so a hub that reopens its stream with a changed set (a page
 * scrolled) does not restart every feed; then sampling stops.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/logger.ts';
import { MAX_WATCHED_PER_NODE, STATS_INTERVAL_MS, type ContainerPoint, type StatsLine } from '../../protocol/stats.ts';
import type { EngineClient } from '../engine-client.ts';
import { ContainerFeed } from './container-feed.ts';
import { HostUsage } from './host-usage.ts';

const LINGER_MS = 2_000;

export interface StatsWatch {
  readonly ids: readonly string[];
  readonly host: boolean;
  onLine(line: StatsLine): void;
}

export class StatsSampler extends EventEmitter<{ tick: [StatsLine] }> {
  readonly #engine: EngineClient;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #watches = new Set<StatsWatch>();
  readonly #feeds = new Map<string, ContainerFeed>();
  readonly #host = new HostUsage();
  #timer: NodeJS.Timeout | null = null;
  #linger: NodeJS.Timeout | null = null;
  #ticking = false;
  /** Ticks run since start (diagnostics and tests). */
  ticks = 0;

  constructor(engine: EngineClient, log: Logger, intervalMs = STATS_INTERVAL_MS) {
    super();
    this.#engine = engine;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  get sampling(): boolean {
    return this.#timer !== null;
  }

  /** Containers with an open engine stats feed now (diagnostics and tests). */
  get feeds(): number {
    return this.#feeds.size;
  }

  /** Starts sampling what `watch` names; the returned function stops it. */
  watch(watch: StatsWatch): () => void {
    this.#watches.add(watch);
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    this.#sync();
    if (!this.#timer) {
      this.#log.info({ containers: watch.ids.length, host: watch.host }, 'stats sampling started');
      this.#timer = setInterval(() => void this.#tick(), this.#intervalMs);
    }
    return () => {
      if (!this.#watches.delete(watch)) return;
      if (this.#watches.size > 0) return this.#sync();
      this.#linger ??= setTimeout(() => {
        this.#linger = null;
        if (this.#watches.size === 0) this.stop();
      }, LINGER_MS);
    };
  }

  stop(): void {
    this.#watches.clear();
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    for (const feed of this.#feeds.values()) feed.close();
    this.#feeds.clear();
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#host.reset();
    this.#log.info('stats sampling stopped');
  }

  #wanted(): { ids: string[]; host: boolean } {
    const ids = new Set<string>();
    let host = false;
    for (const w of this.#watches) {
      host ||= w.host;
      for (const id of w.ids) if (ids.size < MAX_WATCHED_PER_NODE) ids.add(id);
    }
    return { ids: [...ids], host };
  }

  /** Opens a feed for each newly watched container and closes those nobody names any more. */
  #sync(): void {
    const keep = new Set(this.#wanted().ids);
    for (const [id, feed] of this.#feeds) {
      if (keep.has(id)) continue;
      feed.close();
      this.#feeds.delete(id);
    }
    for (const id of keep) if (!this.#feeds.has(id)) this.#feeds.set(id, new ContainerFeed(this.#engine.socketPath, id));
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#watches.size === 0) return;
    this.#ticking = true;
    try {
      const { host } = this.#wanted();
      const hostPoint = host ? await this.#host.sample() : null;
      if (this.#watches.size === 0) return;
      const points: ContainerPoint[] = [];
      for (const feed of this.#feeds.values()) {
        const p = feed.take();
        if (p) points.push(p);
      }
      this.ticks++;
      const line: StatsLine = { at: Date.now(), containers: points, ...(hostPoint ? { host: hostPoint } : {}) };
      for (const w of [...this.#watches]) {
        const mine = new Set(w.ids);
        const own: StatsLine = { at: line.at, containers: points.filter((p) => mine.has(p.id)) };
        if (w.host && hostPoint) own.host = hostPoint;
        w.onLine(own);
      }
      this.emit('tick', line);
    } finally {
      this.#ticking = false;
    }
  }
}
