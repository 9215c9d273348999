/**
 * Keeps this host's engine inventory current: subscribes to the engine's event stream first,
 * then lists every section, and re-lists a section shortly after any event touching it. After
 * an engine restart or a lost stream it lists everything again: the engine keeps only its
 * last 256 events, so replaying with `since=` could miss changes.
 */
import { EventEmitter } from 'node:events';
import { DockfleetError } from '../protocol/errors.ts';
import { INVENTORY_SECTIONS, type EngineFacts, type InventorySection } from '../protocol/inventory.ts';
import { Backoff, sleep } from '../lib/backoff.ts';
import { NdjsonSplitter, parseJsonLine } from '../lib/ndjson.ts';
import type { Logger } from '../lib/logger.ts';
import type { EngineClient } from './engine-client.ts';

export type EngineStatus = { state: 'up'; facts: EngineFacts } | { state: 'down'; error: string };

export interface InventoryEvents {
  engine: [EngineStatus];
  section: [InventorySection, unknown[], number];
}

const SECTION_PATHS: Record<InventorySection, string> = {
  containers: '/containers/json?all=1',
  images: '/images/json',
  volumes: '/volumes',
  networks: '/networks',
};
const EVENT_TYPES: Record<string, InventorySection> = { container: 'containers', image: 'images', volume: 'volumes', network: 'networks' };
/** Container actions that do not change what `containers/json` shows. */
const QUIET_ACTIONS = /^(exec_|top$|attach$|detach$|resize$|export$|archive-path$|commit$|copy$|extract-to-dir$)/;
const EVENTS_PATH = `/events?filters=${encodeURIComponent(JSON.stringify({ type: Object.keys(EVENT_TYPES) }))}`;
/** Events in a burst are folded into one re-list this soon after the first. */
const RELIST_DELAY_MS = 10;

export class InventoryWatcher extends EventEmitter<InventoryEvents> {
  readonly #engine: EngineClient;
  readonly #log: Logger;
  #status: EngineStatus = { state: 'down', error: 'not contacted yet' };
  readonly #sections = new Map<InventorySection, { items: unknown[]; at: number }>();
  readonly #pending = new Set<InventorySection>();
  /** Sections being listed now, and those that changed again meanwhile (listed once more after). */
  readonly #listing = new Set<InventorySection>();
  readonly #again = new Set<InventorySection>();
  #relistTimer: NodeJS.Timeout | null = null;

  constructor(engine: EngineClient, log: Logger) {
    super();
    this.#engine = engine;
    this.#log = log;
  }

  get status(): EngineStatus {
    return this.#status;
  }

  snapshot(): Array<[InventorySection, unknown[], number]> {
    return [...this.#sections].map(([s, v]) => [s, v.items, v.at]);
  }

  section(name: InventorySection): { items: unknown[]; at: number } | null {
    return this.#sections.get(name) ?? null;
  }

  /** Runs until `signal` aborts; never throws for engine trouble, it reports and retries. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 200, maxMs: 5_000 });
    while (!signal.aborted) {
      try {
        await this.#followEngine(signal, () => backoff.reset());
      } catch (err) {
        if (signal.aborted) break;
        const message = err instanceof DockfleetError ? err.message : `lost the engine at ${this.#engine.socketPath}: ${(err as Error).message}`;
        if (this.#status.state === 'up' || this.#status.error !== message) {
          this.#log.warn({ error: message }, 'engine unavailable');
          this.#setStatus({ state: 'down', error: message });
        }
      }
      await sleep(backoff.next(), signal).catch(() => {});
    }
  }

  async #followEngine(signal: AbortSignal, onUp: () => void): Promise<void> {
    const events = await this.#engine.raw({ path: EVENTS_PATH, signal });
    if (events.statusCode !== 200) {
      events.resume();
      throw new DockfleetError('engine_unavailable', `engine refused the event stream: ${events.statusCode}`);
    }
    try {
      const facts = await this.#readFacts(signal);
      // Everything again after (re)connecting: the engine keeps only its last 256 events.
      await Promise.all(INVENTORY_SECTIONS.map((s) => this.#runListing(s, signal)));
      this.#setStatus({ state: 'up', facts });
      onUp();
      const splitter = new NdjsonSplitter(1024 * 1024);
      for await (const chunk of events as AsyncIterable<Buffer>) {
        for (const line of splitter.push(chunk)) this.#onEvent(line);
      }
      throw new DockfleetError('engine_unavailable', 'engine closed its event stream');
    } finally {
      events.destroy();
    }
  }

  #onEvent(line: string): void {
    const parsed = parseJsonLine(line);
    if (!parsed.ok) return;
    const event = parsed.value as { Type?: unknown; Action?: unknown };
    const section = typeof event.Type === 'string' ? EVENT_TYPES[event.Type] : undefined;
    if (!section) return;
    if (section === 'containers' && typeof event.Action === 'string' && QUIET_ACTIONS.test(event.Action)) return;
    // Removing or pulling images changes the image list; container create changes image usage
    // counts too, but those only matter on the next image event.
    this.#pending.add(section);
    this.#relistTimer ??= setTimeout(() => this.#relistPending(), RELIST_DELAY_MS);
  }

  #relistPending(): void {
    this.#relistTimer = null;
    const sections = [...this.#pending];
    this.#pending.clear();
    for (const s of sections) this.#scheduleRelist(s);
  }

  /** One listing per section at a time, so an older answer can never land after a newer one;
   * changes during a listing cause exactly one more listing after it. */
  #scheduleRelist(section: InventorySection): void {
    if (this.#listing.has(section)) {
      this.#again.add(section);
      return;
    }
    this.#runListing(section).catch((err: Error) => this.#log.warn({ section, error: err.message }, 'could not re-list'));
  }

  async #runListing(section: InventorySection, signal?: AbortSignal): Promise<void> {
    this.#listing.add(section);
    try {
      await this.#relist(section, signal);
    } finally {
      this.#listing.delete(section);
      if (this.#again.delete(section)) this.#scheduleRelist(section);
    }
  }

  async #relist(section: InventorySection, signal?: AbortSignal): Promise<void> {
    const at = Date.now();
    const body = await this.#engine.json<unknown>({ path: SECTION_PATHS[section], ...(signal ? { signal } : {}) });
    const items = section === 'volumes' ? ((body as { Volumes?: unknown[] | null }).Volumes ?? []) : (body as unknown[]);
    this.#sections.set(section, { items, at });
    this.emit('section', section, items, at);
  }

  async #readFacts(signal: AbortSignal): Promise<EngineFacts> {
    const [info, version] = await Promise.all([
      this.#engine.json<Record<string, unknown>>({ path: '/info', signal }),
      this.#engine.json<Record<string, unknown>>({ path: '/version', signal }),
    ]);
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
    return {
      version: str(version.Version).slice(0, 64),
      apiVersion: str(version.ApiVersion).slice(0, 16),
      os: str(info.OperatingSystem).slice(0, 200),
      arch: str(info.Architecture).slice(0, 32),
      kernel: str(info.KernelVersion).slice(0, 200),
      cpus: Math.max(0, Math.trunc(num(info.NCPU))),
      memoryBytes: Math.max(0, num(info.MemTotal)),
      hostname: str(info.Name).slice(0, 255),
    };
  }

  #setStatus(status: EngineStatus): void {
    this.#status = status;
    this.emit('engine', status);
  }
}
