/**
 * How many Docker calls and streams one user holds at once on this hub (gateway calls, hijacked
 * exec/attach, terminals, volume file transfers). Each held call costs the hub a socket and the
 * agent a file descriptor towards its engine, so one user (a viewer with 500 `/events`
 * streams) cannot take them all. A fleet call counts once.
 */
import { DockfleetError } from '../../protocol/errors.ts';

export const DEFAULT_STREAMS_PER_USER = 64;

export class StreamCaps {
  readonly #perUser: number;
  readonly #held = new Map<string, number>();

  constructor(perUser = DEFAULT_STREAMS_PER_USER) {
    if (!Number.isInteger(perUser) || perUser < 1) throw new Error(`streams per user must be a positive integer, not ${perUser}`);
    this.#perUser = perUser;
  }

  /** Takes a place for `userId`, or throws too_many_streams. The returned release is idempotent. */
  acquire(userId: string, userName: string): () => void {
    const held = this.#held.get(userId) ?? 0;
    if (held >= this.#perUser) {
      throw new DockfleetError('too_many_streams', `user ${userName} already holds ${this.#perUser} Docker calls and streams on this hub (the most one user may); end some and retry`);
    }
    this.#held.set(userId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(userId) ?? 1) - 1;
      if (left > 0) this.#held.set(userId, left);
      else this.#held.delete(userId);
    };
  }

  held(userId: string): number {
    return this.#held.get(userId) ?? 0;
  }
}
