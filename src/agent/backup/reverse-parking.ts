/**
 * The agent's end of the hub's parked streams (protocol/restic-reverse.ts): the hub keeps one
 * stream waiting at RESTIC_REVERSE_PATH on the link; this holds it, unanswered, until a restic
 * process on this host asks for the hub (restic-bridge-socket.ts takes it). A stream the hub or
 * the link drops leaves the pool at once. A bridge that comes while none is parked (the hub is
 * parking the next one, or the link is down) waits for the next, up to a deadline.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { RESTIC_REVERSE_PATH } from '../../protocol/restic-reverse.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';

export interface ParkedStream {
  req: Http2ServerRequest;
  res: Http2ServerResponse;
}

interface Waiter {
  resolve: (parked: ParkedStream) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class ReverseParking {
  readonly #parked: ParkedStream[] = [];
  readonly #waiters: Waiter[] = [];

  /** How many streams the hub has parked here now. */
  get parked(): number {
    return this.#parked.length;
  }

  /** The tunnel handler with RESTIC_REVERSE_PATH taken out of it. */
  wrap(handler: TunnelHandler): TunnelHandler {
    return (req, res) => {
      if (req.method === 'POST' && req.url === RESTIC_REVERSE_PATH) return this.#accept({ req, res });
      return handler(req, res);
    };
  }

  /** The next parked stream, waiting for one up to `timeoutMs`. */
  take(timeoutMs: number): Promise<ParkedStream> {
    const ready = this.#parked.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`the hub did not take a restic connection within ${timeoutMs / 1000} s (is the agent connected?)`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** A stream taken but not used (its bridge left first) goes back for the next one. */
  putBack(parked: ParkedStream): void {
    this.#accept(parked);
  }

  /** Fails every waiting bridge (the agent is stopping). */
  close(): void {
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('the agent is stopping'));
    }
  }

  #accept(parked: ParkedStream): void {
    if (parked.res.stream.destroyed) return;
    const waiter = this.#waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      return waiter.resolve(parked);
    }
    this.#parked.push(parked);
    parked.res.stream.once('close', () => {
      const at = this.#parked.indexOf(parked);
      if (at >= 0) this.#parked.splice(at, 1);
    });
  }
}
