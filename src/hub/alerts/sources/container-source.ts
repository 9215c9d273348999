/**
 * Containers in trouble, from the inventory the agents stream (kept current from engine
 * events): a container whose healthcheck reports it unhealthy, or one restarting in a loop
 * (at least `restarts` restarts within `windowMs`; default 3 in 5 min). A restart is seen as a
 * move into Docker's `restarting` state, or from exited/dead back to running. A loop clears
 * once the window passes without enough restarts, or the container is gone. After a hub
 * restart, an open loop incident is kept until its window has passed since it last changed,
 * so the restart counts the hub lost do not resolve it early.
 */
import type { InventoryCache } from '../../inventory-cache.ts';
import type { NodeRegistry } from '../../node-registry.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'container';
const TICK_MS = 5_000;

export interface ContainerLoopTuning {
  restarts: number;
  windowMs: number;
}

export const CONTAINER_LOOP_DEFAULTS: ContainerLoopTuning = { restarts: 3, windowMs: 5 * 60_000 };

interface Seen {
  state: string;
  restarts: number[];
}

interface ListedContainer {
  Id?: unknown;
  Names?: unknown;
  State?: unknown;
  Status?: unknown;
}

export class ContainerSource implements AlertSource {
  readonly kind = KIND;
  readonly #registry: NodeRegistry;
  readonly #inventory: InventoryCache;
  readonly #tuning: ContainerLoopTuning;
  /** node id → container id → what was last seen. */
  readonly #seen = new Map<string, Map<string, Seen>>();
  #holdUntil = new Map<string, number>();

  constructor(registry: NodeRegistry, inventory: InventoryCache, tuning: Partial<ContainerLoopTuning> = {}) {
    this.#registry = registry;
    this.#inventory = inventory;
    this.#tuning = { ...CONTAINER_LOOP_DEFAULTS, ...tuning };
  }

  start(sink: ConditionSink): () => void {
    for (const [key, updatedAt] of sink.openKeys(`${KIND}:`)) this.#holdUntil.set(key, updatedAt + this.#tuning.windowMs);
    const onChange = (nodeId: string, what: string): void => {
      if (what === 'containers') this.#look(sink, nodeId);
    };
    this.#inventory.on('changed', onChange);
    const timer = setInterval(() => {
      for (const nodeId of this.#seen.keys()) this.#look(sink, nodeId);
    }, TICK_MS).unref();
    return () => {
      clearInterval(timer);
      this.#inventory.off('changed', onChange);
    };
  }

  #look(sink: ConditionSink, nodeId: string): void {
    const node = this.#registry.byId(nodeId);
    const items = this.#inventory.section(nodeId, 'containers')?.items;
    if (!node || !items) return;
    const now = Date.now();
    const before = this.#seen.get(nodeId) ?? new Map<string, Seen>();
    const after = new Map<string, Seen>();
    const holding = new Set<string>();
    for (const raw of items as ListedContainer[]) {
      if (typeof raw.Id !== 'string' || typeof raw.State !== 'string') continue;
      const name = Array.isArray(raw.Names) && typeof raw.Names[0] === 'string' ? raw.Names[0].replace(/^\//, '') : raw.Id.slice(0, 12);
      const prev = before.get(raw.Id);
      const restarts = (prev?.restarts ?? []).filter((t) => now - t < this.#tuning.windowMs);
      if (prev && prev.state !== raw.State && (raw.State === 'restarting' || (raw.State === 'running' && (prev.state === 'exited' || prev.state === 'dead')))) restarts.push(now);
      after.set(raw.Id, { state: raw.State, restarts });
      const key = `${KIND}:${node.name}:${name}`;
      const unhealthy = typeof raw.Status === 'string' && raw.Status.includes('(unhealthy)');
      const looping = restarts.length >= this.#tuning.restarts;
      const held = (this.#holdUntil.get(key) ?? 0) > now;
      if (!unhealthy && !looping && !held) continue;
      holding.add(key);
      if (!unhealthy && !looping) continue; // held over a hub restart: leave it as it is
      const status = typeof raw.Status === 'string' ? raw.Status : raw.State;
      sink.raise(KIND, {
        key,
        severity: 'warning',
        node: node.name,
        subject: name,
        title: looping ? `Container ${name} on ${node.name} is restarting in a loop` : `Container ${name} on ${node.name} is unhealthy`,
        detail: looping ? `${name} restarted at least ${this.#tuning.restarts} times within ${Math.round(this.#tuning.windowMs / 60_000)} min.` : `Its healthcheck reports it unhealthy (${status}).`,
      });
    }
    this.#seen.set(nodeId, after);
    sink.clearOthers(`${KIND}:${node.name}:`, holding);
  }
}
