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

/**
 * Whether a stream that emitted 'end' was in fact cut. Node ends an HTTP/2 stream that was reset
 * by its peer (rstCode set) or destroyed with its session (a session.destroy() without an error:
 * rstCode 0, but the stream is destroyed before its 'end', which never happens to a whole one).
 * Ending the writer then would hand a truncated body to its reader as if whole (a chunked answer
 * gets its last chunk); the caller destroys it instead.
 */
export function wasCut(stream: Readable): boolean {
  const code = (stream as Readable & { rstCode?: number }).rstCode;
  return stream.destroyed || (code !== undefined && code !== 0);
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
  if (opts.end !== false) from.once('end', () => (wasCut(from) ? to.destroy() : to.end()));
  from.once('error', (err) => to.destroy(err));
  // A writer gone mid-copy (client hung up, stream reset): stop reading.
  to.once('error', () => from.destroy());
  to.once('close', () => {
    stopGate?.();
    if (!from.readableEnded) from.destroy();
  });
  from.once('close', () => {
    stopGate?.();
    // Gone without an end (destroyed with its session, what it still held dropped): a cut, which
    // the reader must see as one rather than wait on forever.
    if (!from.readableEnded && opts.end !== false && !to.destroyed) to.destroy();
  });
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
