/**
 * Copies one stream into another with backpressure, tuned for bulk transfers: the writer may
 * hold up to `budgetBytes` before the reader is paused (a 16 KiB high-water mark would pause and
 * resume the reader on nearly every chunk, an event-loop round trip and two epoll calls each),
 * and the writes of one tick are corked into one (one TLS record run and one syscall instead
 * of one per chunk). Memory stays bounded by the budget.
 */
import type { Readable, Writable } from 'node:stream';

export const RELAY_BUDGET_BYTES = 1024 * 1024;

export interface RelayOptions {
  budgetBytes?: number;
  /** Ends `to` when `from` ends (default true). */
  end?: boolean;
}

export function relay(from: Readable, to: Writable, opts: RelayOptions = {}): void {
  const budget = opts.budgetBytes ?? RELAY_BUDGET_BYTES;
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
    if (to.writableLength >= budget) from.pause();
  });
  to.on('drain', () => from.resume());
  if (opts.end !== false) from.once('end', () => to.end());
  from.once('error', (err) => to.destroy(err));
  // A writer gone mid-copy (client hung up, stream reset): stop reading.
  to.once('error', () => from.destroy());
  to.once('close', () => {
    if (!from.readableEnded) from.destroy();
  });
}
