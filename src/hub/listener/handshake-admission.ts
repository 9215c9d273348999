/**
 * Bounds the TLS handshakes a listener runs at once. A fleet that lost its hub redials all at
 * once; thousands of handshakes interleaved on a few cores each take longer than their deadline,
 * every one fails, and every retry starts over (congestion collapse: 10,000 agents never came
 * back after a hub restart). Here at most `slots` handshakes run. The rest wait, untouched (no
 * TLS work yet), in one queue per client address taken in turn, so a crowd behind one address
 * does not starve another. A connection that finds the queue full, or that waited so long its
 * dialer has likely given up, is closed at once, and the dialer backs off.
 *
 * A slot is held until the handshake ends or `slotMs` passes, so a client that stalls mid-way
 * cannot pin a slot for its whole deadline (the connection guard's deadline still ends it).
 */
import type { Socket } from 'node:net';

export interface AdmissionLimits {
  /** Handshakes run at once. */
  readonly slots: number;
  /** Connections that may wait for a slot, over all addresses. */
  readonly queue: number;
  /** A connection that waited this long is closed instead of started. */
  readonly maxWaitMs: number;
  /** A handshake holds its slot at most this long. */
  readonly slotMs: number;
}

interface Waiting {
  readonly socket: Socket;
  readonly start: () => void;
  readonly since: number;
  gone: boolean;
}

/** A first-in, first-out queue that takes from the front without moving the rest. */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }
}

export interface AdmissionCounts {
  running: number;
  queued: number;
  /** The most handshakes that ran at once. */
  peak: number;
  /** Closed at accept: the queue was full. */
  refused: number;
  /** Closed at their turn: they had waited longer than maxWaitMs. */
  expired: number;
}

export class HandshakeAdmission {
  readonly #limits: AdmissionLimits;
  /** Waiting connections by client address; an address taken from moves to the back. */
  readonly #queues = new Map<string, Fifo<Waiting>>();
  readonly #counts: AdmissionCounts = { running: 0, queued: 0, peak: 0, refused: 0, expired: 0 };
  readonly #now: () => number;
  /** How each running handshake gives its slot back. */
  readonly #releases = new WeakMap<Socket, () => void>();

  constructor(limits: AdmissionLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get counts(): Readonly<AdmissionCounts> {
    return { ...this.#counts };
  }

  /**
   * Starts `start` (the TLS work) now or when a slot frees; false when the queue is full (the
   * caller closes the socket). `done` ends the slot early (the handshake finished); the socket's
   * close ends it too.
   */
  admit(socket: Socket, start: () => void): boolean {
    if (this.#counts.running < this.#limits.slots && this.#counts.queued === 0) {
      this.#run(socket, start);
      return true;
    }
    if (this.#counts.queued >= this.#limits.queue) {
      this.#counts.refused++;
      return false;
    }
    const address = socket.remoteAddress ?? '';
    const waiting: Waiting = { socket, start, since: this.#now(), gone: false };
    let queue = this.#queues.get(address);
    if (!queue) this.#queues.set(address, (queue = new Fifo()));
    queue.push(waiting);
    this.#counts.queued++;
    socket.once('close', () => {
      if (waiting.gone) return;
      waiting.gone = true;
      this.#counts.queued--;
    });
    return true;
  }

  /** The handshake on `socket` (as admitted) finished: its slot goes to the next in line. */
  done(socket: Socket): void {
    this.#releases.get(socket)?.();
  }

  #run(socket: Socket, start: () => void): void {
    const counts = this.#counts;
    counts.running++;
    if (counts.running > counts.peak) counts.peak = counts.running;
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.#releases.delete(socket);
      counts.running--;
      this.#next();
    };
    const timer = setTimeout(release, this.#limits.slotMs).unref();
    socket.once('close', release);
    this.#releases.set(socket, release);
    start();
  }

  #next(): void {
    while (this.#counts.running < this.#limits.slots && this.#counts.queued > 0) {
      const waiting = this.#take();
      if (!waiting) return;
      if (this.#now() - waiting.since > this.#limits.maxWaitMs) {
        this.#counts.expired++;
        waiting.socket.destroy();
        continue;
      }
      this.#run(waiting.socket, waiting.start);
    }
  }

  /** The next live waiting connection, from the address at the front; that address moves back. */
  #take(): Waiting | undefined {
    for (const [address, queue] of this.#queues) {
      this.#queues.delete(address);
      let waiting = queue.shift();
      while (waiting?.gone) waiting = queue.shift();
      if (queue.length > 0) this.#queues.set(address, queue);
      if (!waiting) continue;
      waiting.gone = true;
      this.#counts.queued--;
      return waiting;
    }
    return undefined;
  }
}
