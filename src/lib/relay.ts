/**
 * Copies one stream into another with backpressure, tuned for bulk transfers: the writer may
 * hold up to `budgetBytes` before the reader is paused (a 16 KiB high-water mark would pause and
 * resume the reader on nearly every chunk, an event-loop round trip and two epoll calls each),
 * and the writes of one tick are corked into one (one TLS record run and one syscall instead
 * of one per chunk). Memory stays bounded by the budget.
 */
import type { Readable, Writable } from 'node:stream';

export const RELAY_BUDGET_BYTES = 1024 * 1024;

/** Something besides the writer that may hold the reader back (hub/gateway/link-qos.ts). */
export interface FlowGate {
  closed(): boolean;
  /** Calls `cb` each time the gate opens; returns a function that stops that. */
  onOpen(cb: () => void): () => void;
}

export interface RelayOptions {
  budgetBytes?: number;
  /** Ends `to` when `from` ends (default true). */
  end?: boolean;
}

export interface Relay {
  /** From now on, read only while `gate` is open. */
  gate(gate: FlowGate): void;
}

export function relay(from: Readable, to: Writable, opts: RelayOptions = {}): Relay {
  const budget = opts.budgetBytes ?? RELAY_BUDGET_BYTES;
  let gate: FlowGate | null = null;
  let stopGate: (() => void) | null = null;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    to.uncork();
  };
  from.on('data', (chunk: Buffer) => {
    if (!corked) {
      corked = true;
      to.cork();
      process.nextTick(uncork);
    }
    to.write(chunk);
    if (to.writableLength >= budget || gate?.closed()) from.pause();
  });
  to.on('drain', () => {
    if (!gate?.closed()) from.resume();
  });
  if (opts.end !== false) from.once('end', () => to.end());
  from.once('error', (err) => to.destroy(err));
  // A writer gone mid-copy (client hung up, stream reset): stop reading.
  to.once('error', () => from.destroy());
  to.once('close', () => {
    stopGate?.();
    if (!from.readableEnded) from.destroy();
  });
  from.once('close', () => stopGate?.());
  return {
    gate(g: FlowGate): void {
      stopGate?.();
      gate = g;
      stopGate = g.onOpen(() => {
        if (to.writableLength < budget && !from.destroyed) from.resume();
      });
    },
  };
}
