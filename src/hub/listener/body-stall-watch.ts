/**
 * Cuts request bodies that stop arriving. A request is watched from its head until its body is
 * complete; one sweep looks at every watched request (no timer per request). A body counts as
 * stalled only while the hub is ready to read it: a socket paused by backpressure (the agent or
 * engine is slower than the client) is never stalled, however long it waits. Once the body is
 * complete the answer may take as long as it likes (logs -f, events); an answer that flows while
 * the body is still open keeps the request alive too. Upgraded connections
 * (exec, attach, the agents' links, the terminal) are never watched at all.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

interface Watched {
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  bytesRead: number;
  bytesWritten: number;
  quietSince: number;
}

/** The raw HTTP/1.1 answer for a cut body, written on the socket as Node's own 408 is. */
export type StallAnswer = (req: IncomingMessage, stalledMs: number) => string;

export class BodyStallWatch {
  readonly #stallMs: number;
  readonly #answer: StallAnswer;
  readonly #watched = new Set<Watched>();
  #sweep: NodeJS.Timeout | null = null;

  constructor(stallMs: number, answer: StallAnswer) {
    this.#stallMs = stallMs;
    this.#answer = answer;
  }

  /** Watches REQ's body until it is complete (nothing to do for a body already read). */
  watch(req: IncomingMessage, res: ServerResponse): void {
    if (req.complete) return;
    const socket = req.socket;
    this.#watched.add({ req, res, socket, bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten, quietSince: Date.now() });
    this.#sweep ??= setInterval(() => this.#check(), Math.max(25, Math.min(1_000, Math.floor(this.#stallMs / 4)))).unref();
  }

  get size(): number {
    return this.#watched.size;
  }

  close(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
    this.#watched.clear();
  }

  #check(): void {
    const now = Date.now();
    for (const w of this.#watched) {
      if (w.req.complete || w.socket.destroyed) {
        this.#watched.delete(w);
      } else if (w.socket.bytesRead !== w.bytesRead || w.socket.bytesWritten !== w.bytesWritten || w.socket.isPaused()) {
        w.bytesRead = w.socket.bytesRead;
        w.bytesWritten = w.socket.bytesWritten;
        w.quietSince = now;
      } else if (now - w.quietSince >= this.#stallMs) {
        this.#watched.delete(w);
        this.#cut(w, now - w.quietSince);
      }
    }
    if (this.#watched.size === 0 && this.#sweep) {
      clearInterval(this.#sweep);
      this.#sweep = null;
    }
  }

  #cut(w: Watched, stalledMs: number): void {
    // The handler has not answered yet (it waits for the body): the 408 goes first, and whatever
    // the handler writes later lands on a closed socket. An answer already under way is just cut.
    if (!w.res.headersSent && w.socket.writable) w.socket.write(this.#answer(w.req, stalledMs));
    w.socket.destroySoon();
    // A client that never reads cannot hold the socket open with unsent bytes.
    setTimeout(() => w.socket.destroy(), 1_000).unref();
  }
}
