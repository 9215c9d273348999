/**
 * Samples what the hub's open stats streams name, and nothing else: a timer runs only while at
 * least one stream is open, each tick asks the engine for a one-shot stats answer per watched
 * container (a few at a time), turns it into a point with the previous sample's counters (a
 * container's first sample gives counters only, no point), and hands the tick's line to every
 * stream. Memory is bounded: one set of counters per watched container, forgotten when no
 * stream names it any more.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/logger.ts';
import { MAX_WATCHED_PER_NODE, STATS_INTERVAL_MS, type ContainerPoint, type StatsLine } from '../../protocol/stats.ts';
import type { EngineClient } from '../engine-client.ts';
import { HostUsage } from './host-usage.ts';
import { countersOf, pointOf, type Counters, type EngineStats } from './stats-math.ts';

/** Engine calls in flight at once per tick. */
const CONCURRENCY = 8;
const ENGINE_TIMEOUT_MS = 5_000;

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
  readonly #counters = new Map<string, Counters>();
  readonly #host = new HostUsage();
  #timer: NodeJS.Timeout | null = null;
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

  /** Starts sampling what `watch` names; the returned function stops it. */
  watch(watch: StatsWatch): () => void {
    this.#watches.add(watch);
    if (!this.#timer) {
      this.#log.info({ containers: watch.ids.length, host: watch.host }, 'stats sampling started');
      this.#timer = setInterval(() => void this.#tick(), this.#intervalMs);
      void this.#tick();
    }
    return () => {
      if (!this.#watches.delete(watch)) return;
      if (this.#watches.size === 0) this.stop();
      else this.#forgetUnwatched();
    };
  }

  stop(): void {
    this.#watches.clear();
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#timer = null;
    this.#counters.clear();
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

  #forgetUnwatched(): void {
    const { ids } = this.#wanted();
    const keep = new Set(ids);
    for (const id of this.#counters.keys()) if (!keep.has(id)) this.#counters.delete(id);
  }

  async #tick(): Promise<void> {
    // A slow engine makes ticks skip rather than pile up.
    if (this.#ticking || this.#watches.size === 0) return;
    this.#ticking = true;
    try {
      const { ids, host } = this.#wanted();
      const points: ContainerPoint[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ids.length) {
          const id = ids[next++]!;
          const point = await this.#sampleOne(id);
          if (point) points.push(point);
        }
      };
      const [hostPoint] = await Promise.all([host ? this.#host.sample() : Promise.resolve(null), ...Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker)]);
      if (this.#watches.size === 0) return;
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

  /** One container's point, or null when it is gone or not running (its counters are forgotten). */
  async #sampleOne(id: string): Promise<ContainerPoint | null> {
    let stats: EngineStats;
    try {
      stats = await this.#engine.json<EngineStats>({ path: `/containers/${id}/stats?stream=false&one-shot=true`, timeoutMs: ENGINE_TIMEOUT_MS });
    } catch {
      this.#counters.delete(id);
      return null;
    }
    const atMs = Date.now();
    const now = countersOf(stats, atMs);
    // A stopped container answers with zeros: nothing to show.
    if (now.systemTotal === 0) {
      this.#counters.delete(id);
      return null;
    }
    const before = this.#counters.get(id) ?? null;
    if (this.#watches.size > 0) this.#counters.set(id, now);
    // The first sample only sets the counters: with nothing to compare, CPU and the rates would
    // read 0, a false dip on every chart each time sampling (re)starts.
    return before ? pointOf(id, stats, now, before) : null;
  }
}
