/**
 * Keeps this host's engine inventory current: subscribes to the engine's event stream first,
 * then lists every section, and re-lists a section shortly after any event touching it. After
 * an engine restart or a lost stream it lists everything again: the engine keeps only its
 * last 256 events, so replaying with `since=` could miss changes.
 *
 * Listings of one section never overlap (an older answer can never land after a newer one),
 * and a change during a listing causes one more listing after it. A container's `die` event
 * can come before the engine's list shows the exit (dockerd 20.10 cleans up first and sends no
 * event after), so the containers are listed again until they show it. A failed re-list is
 * retried, and everything is listed again every minute in case the engine dropped an event
 * (it drops them for a subscriber that falls behind); a listing that finds what was already
 * known is not sent again.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DockfleetError } from '../protocol/errors.ts';
import { INVENTORY_SECTIONS, type EngineFacts, type InventorySection } from '../protocol/inventory.ts';
import { Backoff, sleep } from '../lib/backoff.ts';
import { NdjsonSplitter, parseJsonLine } from '../lib/ndjson.ts';
import type { Logger } from '../lib/logger.ts';
import type { EngineClient } from './engine-client.ts';
import { WATCHED_EVENT_TYPES, sectionsTouchedBy } from './inventory-events.ts';

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
const EVENTS_PATH = `/events?filters=${encodeURIComponent(JSON.stringify({ type: WATCHED_EVENT_TYPES }))}`;
/** Events in a burst are folded into one re-list this soon after the first. */
const RELIST_DELAY_MS = 10;
/** A failed re-list is tried again after this long (while the engine is up). */
const RETRY_MS = 1_000;
/** Containers that ended are listed again at these growing intervals until they show it, for at most SETTLE_FOR_MS. */
const SETTLE_FIRST_MS = 20;
const SETTLE_MAX_MS = 500;
const SETTLE_FOR_MS = 10_000;
/** Everything is listed again this often, in case the engine dropped an event. */
const RESYNC_EVERY_MS = 60_000;

interface Listed {
  items: unknown[];
  at: number;
  digest: string;
}

export class InventoryWatcher extends EventEmitter<InventoryEvents> {
  readonly #engine: EngineClient;
  readonly #log: Logger;
  #status: EngineStatus = { state: 'down', error: 'not contacted yet' };
  readonly #sections = new Map<InventorySection, Listed>();
  readonly #pending = new Set<InventorySection>();
  #relistTimer: NodeJS.Timeout | null = null;
  /** The listing of each section in flight, and the one queued to start after it. */
  readonly #inFlight = new Map<InventorySection, Promise<void>>();
  readonly #queued = new Map<InventorySection, Promise<void>>();
  /** Containers that ended but were still listed as running: id → when to stop waiting. */
  readonly #settling = new Map<string, number>();
  #settleTimer: NodeJS.Timeout | null = null;
  #settleDelay = SETTLE_FIRST_MS;

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
    if (this.#relistTimer) clearTimeout(this.#relistTimer);
    if (this.#settleTimer) clearTimeout(this.#settleTimer);
  }

  async #followEngine(signal: AbortSignal, onUp: () => void): Promise<void> {
    const events = await this.#engine.raw({ path: EVENTS_PATH, signal });
    if (events.statusCode !== 200) {
      events.resume();
      throw new DockfleetError('engine_unavailable', `engine refused the event stream: ${events.statusCode}`);
    }
    let resync: NodeJS.Timeout | null = null;
    try {
      const facts = await this.#readFacts(signal);
      // Everything again after (re)connecting: the engine keeps only its last 256 events. Each
      // of these listings starts after any listing still in flight from before.
      await Promise.all(INVENTORY_SECTIONS.map((s) => this.#listSoon(s, signal)));
      this.#setStatus({ state: 'up', facts });
      onUp();
      resync = setInterval(() => {
        for (const s of INVENTORY_SECTIONS) this.#relistInBackground(s);
      }, RESYNC_EVERY_MS);
      resync.unref();
      const splitter = new NdjsonSplitter(1024 * 1024);
      for await (const chunk of events as AsyncIterable<Buffer>) {
        for (const line of splitter.push(chunk)) this.#onEvent(line);
      }
      throw new DockfleetError('engine_unavailable', 'engine closed its event stream');
    } finally {
      if (resync) clearInterval(resync);
      events.destroy();
    }
  }

  #onEvent(line: string): void {
    const parsed = parseJsonLine(line);
    if (!parsed.ok) return;
    const { sections, ended } = sectionsTouchedBy(parsed.value);
    if (ended) this.#settling.set(ended, Date.now() + SETTLE_FOR_MS);
    for (const s of sections) this.#pending.add(s);
    if (sections.length > 0) this.#relistTimer ??= setTimeout(() => this.#relistPending(), RELIST_DELAY_MS);
  }

  #relistPending(): void {
    this.#relistTimer = null;
    const sections = [...this.#pending];
    this.#pending.clear();
    for (const s of sections) this.#relistInBackground(s);
  }

  /** Lists SECTION soon; a failure is logged and tried again while the engine is up. */
  #relistInBackground(section: InventorySection): void {
    this.#listSoon(section).catch((err: Error) => {
      this.#log.warn({ section, error: err.message }, 'could not re-list');
      setTimeout(() => {
        if (this.#status.state !== 'up') return; // the engine's return lists everything anyway
        this.#pending.add(section);
        this.#relistTimer ??= setTimeout(() => this.#relistPending(), RELIST_DELAY_MS);
      }, RETRY_MS).unref();
    });
  }

  /** Settles after a listing of SECTION that started after this call: now if none is in
   * flight, else right after the one in flight (callers meanwhile share that one listing). */
  #listSoon(section: InventorySection, signal?: AbortSignal): Promise<void> {
    const queued = this.#queued.get(section);
    if (queued) return queued;
    const current = this.#inFlight.get(section);
    if (!current) return this.#startListing(section, signal);
    const next = current
      .catch(() => {})
      .then(() => {
        this.#queued.delete(section);
        return this.#startListing(section, signal);
      });
    this.#queued.set(section, next);
    return next;
  }

  #startListing(section: InventorySection, signal?: AbortSignal): Promise<void> {
    const listing = this.#relist(section, signal).finally(() => {
      if (this.#inFlight.get(section) === listing) this.#inFlight.delete(section);
    });
    this.#inFlight.set(section, listing);
    return listing;
  }

  async #relist(section: InventorySection, signal?: AbortSignal): Promise<void> {
    const at = Date.now();
    const body = await this.#engine.json<unknown>({ path: SECTION_PATHS[section], ...(signal ? { signal } : {}) });
    const items = section === 'volumes' ? ((body as { Volumes?: unknown[] | null }).Volumes ?? []) : (body as unknown[]);
    if (!Array.isArray(items)) throw new DockfleetError('engine_unavailable', `engine listed ${section} as something other than a list`);
    if (section === 'containers') this.#checkSettling(items);
    const digest = createHash('sha256').update(JSON.stringify(items)).digest('base64');
    if (this.#sections.get(section)?.digest === digest) return;
    this.#sections.set(section, { items, at, digest });
    this.emit('section', section, items, at);
  }

  /** Forgets ended containers the list now shows as not running (or gone); lists again later for the rest. */
  #checkSettling(items: unknown[]): void {
    if (this.#settling.size === 0) return;
    const now = Date.now();
    const running = new Set((items as Array<{ Id?: unknown; State?: unknown }>).filter((c) => c.State === 'running').map((c) => c.Id));
    for (const [id, until] of this.#settling) {
      if (!running.has(id) || now > until) this.#settling.delete(id);
    }
    if (this.#settling.size === 0) {
      this.#settleDelay = SETTLE_FIRST_MS;
      return;
    }
    if (this.#settleTimer) return;
    this.#settleTimer = setTimeout(() => {
      this.#settleTimer = null;
      this.#relistInBackground('containers');
    }, this.#settleDelay);
    this.#settleDelay = Math.min(SETTLE_MAX_MS, this.#settleDelay * 2);
  }

  async #readFacts(signal: AbortSignal): Promise<EngineFacts> {
    const [info, version] = await Promise.all([this.#engine.json<Record<string, unknown>>({ path: '/info', signal }), this.#engine.json<Record<string, unknown>>({ path: '/version', signal })]);
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
