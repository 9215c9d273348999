/**
 * The hub's bounded history of Docker engine events across the fleet: a ring of the newest
 * events (older ones fall off), read newest first through a filter of node, type, action and
 * name. Each event gets a hub-wide sequence number, so a live view that reconnects can ask
 * for what it missed (`after`).
 */

import type { FleetEvent } from '../../protocol/fleet-events.ts';

export interface EventFilter {
  node?: string | undefined;
  type?: string | undefined;
  action?: string | undefined;
  /** Substring of the name or ID, case-insensitive. */
  name?: string | undefined;
  /** Only events with a higher sequence number. */
  after?: number | undefined;
  /** At most this many, the newest. */
  limit?: number | undefined;
  /** Only events of nodes the caller may see (a scoped user's grants); applied before the limit. */
  visible?: ((node: string) => boolean) | undefined;
}

export const DEFAULT_CAPACITY = 5_000;

export function matchesEvent(e: FleetEvent, f: EventFilter): boolean {
  if (f.node && e.node !== f.node) return false;
  if (f.visible && !f.visible(e.node)) return false;
  if (f.type && e.type !== f.type) return false;
  // "exec_start: sh" and "health_status: healthy" match their stem too.
  if (f.action && e.action !== f.action && !e.action.startsWith(`${f.action}:`)) return false;
  if (f.name) {
    const needle = f.name.toLowerCase();
    if (!e.name.toLowerCase().includes(needle) && !e.id.toLowerCase().startsWith(needle)) return false;
  }
  if (f.after !== undefined && e.seq <= f.after) return false;
  return true;
}

export class EventRing {
  readonly #slots: Array<FleetEvent | undefined>;
  #next = 0;
  #seq = 0;

  constructor(readonly capacity = DEFAULT_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.#slots = new Array<FleetEvent | undefined>(capacity);
  }

  get size(): number {
    return Math.min(this.#seq, this.capacity);
  }

  push(e: Omit<FleetEvent, 'seq'>): FleetEvent {
    const event: FleetEvent = { ...e, seq: ++this.#seq };
    this.#slots[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    return event;
  }

  /** Newest first. */
  query(f: EventFilter = {}): FleetEvent[] {
    const limit = f.limit ?? this.capacity;
    const out: FleetEvent[] = [];
    for (let i = 1; i <= this.size && out.length < limit; i++) {
      const e = this.#slots[(this.#next - i + this.capacity) % this.capacity]!;
      if (f.after !== undefined && e.seq <= f.after) break;
      if (matchesEvent(e, f)) out.push(e);
    }
    return out;
  }
}
