/**
 * The hub's current view of each node's engine: served from memory, written behind to the
 * store (coalesced per node and section) so it survives a restart without a write per event.
 */
import { EventEmitter } from 'node:events';
import type { InventorySection } from '../protocol/inventory.ts';
import type { Store } from '../store/store.ts';
import type { Logger } from '../lib/logger.ts';

export interface EngineState {
  state: 'up' | 'down' | 'unknown';
  error?: string;
}

interface NodeInventory {
  sections: Map<InventorySection, { items: unknown[]; updatedAt: number }>;
  engine: EngineState;
}

const FLUSH_DELAY_MS = 1_000;

export interface InventoryEvents {
  /** A node's section or engine state changed. */
  changed: [nodeId: string, what: InventorySection | 'engine'];
}

export class InventoryCache extends EventEmitter<InventoryEvents> {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #nodes = new Map<string, NodeInventory>();
  readonly #dirty = new Map<string, Set<InventorySection>>();
  #flushTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, log: Logger) {
    super();
    this.#store = store;
    this.#log = log;
  }

  /** Loads a node's last known inventory from the store (at start, before its agent is back). */
  async load(nodeId: string): Promise<void> {
    const records = await this.#store.loadInventory(nodeId);
    const entry = this.#entry(nodeId);
    for (const r of records) {
      if (!entry.sections.has(r.section)) entry.sections.set(r.section, { items: r.items, updatedAt: r.updatedAt });
    }
  }

  section(nodeId: string, section: InventorySection): { items: unknown[]; updatedAt: number } | null {
    return this.#nodes.get(nodeId)?.sections.get(section) ?? null;
  }

  engine(nodeId: string): EngineState {
    return this.#nodes.get(nodeId)?.engine ?? { state: 'unknown' };
  }

  counts(nodeId: string): { containers: number; running: number; images: number; volumes: number; networks: number } {
    const size = (s: InventorySection): number => this.section(nodeId, s)?.items.length ?? 0;
    const containers = this.section(nodeId, 'containers')?.items ?? [];
    const running = containers.filter((c) => (c as { State?: unknown }).State === 'running').length;
    return { containers: containers.length, running, images: size('images'), volumes: size('volumes'), networks: size('networks') };
  }

  setSection(nodeId: string, section: InventorySection, items: unknown[], at: number): void {
    this.#entry(nodeId).sections.set(section, { items, updatedAt: at });
    this.#markDirty(nodeId, section);
    this.emit('changed', nodeId, section);
  }

  /** A section another replica's link reported (cluster/view-feed.ts): shown, not persisted (its holder does). */
  showSection(nodeId: string, section: InventorySection, items: unknown[], at: number): void {
    this.#entry(nodeId).sections.set(section, { items, updatedAt: at });
    this.emit('changed', nodeId, section);
  }

  #markDirty(nodeId: string, section: InventorySection): void {
    let dirty = this.#dirty.get(nodeId);
    if (!dirty) this.#dirty.set(nodeId, (dirty = new Set()));
    dirty.add(section);
    // unref: a retry against a failing store must not keep a closing hub alive (close() flushes).
    this.#flushTimer ??= setTimeout(() => void this.flush(), FLUSH_DELAY_MS).unref();
  }

  setEngine(nodeId: string, engine: EngineState): void {
    this.#entry(nodeId).engine = engine;
    this.emit('changed', nodeId, 'engine');
  }

  /** Marks the engine state unknown (the agent went away); the sections stay as last known. */
  forgetEngine(nodeId: string): void {
    const entry = this.#nodes.get(nodeId);
    if (entry) entry.engine = { state: 'unknown' };
    this.emit('changed', nodeId, 'engine');
  }

  drop(nodeId: string): void {
    this.#nodes.delete(nodeId);
    this.#dirty.delete(nodeId);
  }

  /** Writes every pending section to the store. Safe to call at any time; calls serialise. */
  flush(): Promise<void> {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    this.#flushing = this.#flushing.then(async () => {
      for (const [nodeId, sections] of batch) {
        for (const section of sections) {
          const current = this.section(nodeId, section);
          if (!current) continue;
          try {
            await this.#store.saveInventory(nodeId, section, current.items, current.updatedAt);
          } catch (err) {
            // Kept pending and tried again: otherwise a restart would bring back an older view.
            this.#log.error({ err, nodeId, section }, 'could not persist inventory; will retry');
            if (this.#nodes.has(nodeId)) this.#markDirty(nodeId, section);
          }
        }
      }
    });
    return this.#flushing;
  }

  #entry(nodeId: string): NodeInventory {
    let entry = this.#nodes.get(nodeId);
    if (!entry) this.#nodes.set(nodeId, (entry = { sections: new Map(), engine: { state: 'unknown' } }));
    return entry;
  }
}
