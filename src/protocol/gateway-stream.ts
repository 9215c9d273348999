/**
 * The bytes of the agents' gateway below HTTP/2. The agent asks for a WebSocket upgrade, the
 * kind of upgrade proxies are built to pass on. Each side
 * then sends one binary WebSocket frame header that declares the largest length there is
 * (2^63 − 1): everything after it, for the life of the connection, is that one message's
 * payload. Inside it come a few handshake lines (JSON, one per line, validated by
 * handshake.ts) and then a plain HTTP/2 session on the TLS socket itself, so Node's HTTP/2
 * reads and writes the socket natively with no per-message framing or copying in between.
 *
 * The agent's header carries a mask bit with an all-zero key, as RFC 6455 requires of clients;
 * XOR with zero leaves the payload as it is. CONNECT proxies and proxies that pass TLS through
 * carry the connection; one that looked at the frames would see a valid, endless binary
 * message. (A proxy that terminates TLS cannot carry it at all: the agent's signature is bound
 * to its own TLS session.)
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { DockfleetError } from './errors.ts';
import { GATEWAY_SUBPROTOCOL, MAX_HANDSHAKE_FRAME } from './handshake.ts';
import { http1Head } from '../lib/http1-head.ts';

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const ENDLESS_LENGTH = [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/** FIN + binary opcode, unmasked, 64-bit length 2^63 − 1: what the hub sends first. */
export const HUB_STREAM_START = Buffer.from([0x82, 0x7f, ...ENDLESS_LENGTH]);
/** The same from the agent: masked (bit set) with the key 0,0,0,0. */
export const AGENT_STREAM_START = Buffer.from([0x82, 0xff, ...ENDLESS_LENGTH, 0, 0, 0, 0]);

/** The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function websocketAccept(key: string): string {
  return createHash('sha1')
    .update(key + WEBSOCKET_GUID)
    .digest('base64');
}

export type UpgradeVerdict = { ok: true; response: string } | { ok: false; status: number; message: string };

/** Checks an agent's upgrade request and builds the 101 answer (or says why not). */
export function answerUpgrade(req: IncomingMessage): UpgradeVerdict {
  const key = req.headers['sec-websocket-key'];
  if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return { ok: false, status: 400, message: 'the agent gateway needs a WebSocket upgrade' };
  }
  if (req.headers['sec-websocket-version'] !== '13') return { ok: false, status: 426, message: 'WebSocket version 13 is required' };
  if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16) return { ok: false, status: 400, message: 'missing or malformed Sec-WebSocket-Key' };
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!offered.includes(GATEWAY_SUBPROTOCOL)) {
    return { ok: false, status: 400, message: `the agent gateway speaks only the ${GATEWAY_SUBPROTOCOL} subprotocol` };
  }
  const response = [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${websocketAccept(key)}`,
    `Sec-WebSocket-Protocol: ${GATEWAY_SUBPROTOCOL}`,
    '',
    '',
  ].join('\r\n');
  return { ok: true, response };
}

/** An HTTP error answer to a refused upgrade, then the socket is closed. */
export function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = JSON.stringify({ message });
  socket.end(
    http1Head(status, {
      Connection: 'close',
      // RFC 6455 §4.4: a version the server does not speak is answered with the one it does.
      'Sec-WebSocket-Version': status === 426 ? 13 : undefined,
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
    }) + body,
  );
  setTimeout(() => socket.destroy(), 1_000).unref();
}

/**
 * The handshake part of the stream: checks the peer's stream start, then reads newline-ended
 * lines (each at most MAX_HANDSHAKE_FRAME bytes) and writes lines. `release()` hands the socket
 * on with whatever arrived after the last line put back, for HTTP/2 to read first.
 */
export class HandshakeStream<S extends Duplex = Duplex> {
  readonly socket: S;
  readonly #expectStart: Buffer;
  #started = false;
  #pending: Buffer = Buffer.alloc(0);
  readonly #lines: string[] = [];
  #failure: DockfleetError | null = null;
  #closed = false;
  #wake: (() => void) | null = null;
  #released = false;

  constructor(socket: S, expectStart: Buffer) {
    this.socket = socket;
    this.#expectStart = expectStart;
    socket.on('data', this.#onData);
    socket.on('end', this.#onClosed);
    socket.on('close', this.#onClosed);
    socket.on('error', this.#onClosed);
  }

  /** Sends one handshake line. */
  send(frame: object): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(frame)}\n`);
  }

  /** Sends the last handshake line and resolves once the socket has written it: HTTP/2 may take
   * the socket over only with no write of ours still in flight. */
  sendLast(frame: object): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(`${JSON.stringify(frame)}\n`, (err) => (err ? reject(new DockfleetError('handshake_timeout', `connection lost during the handshake: ${err.message}`)) : resolve()));
    });
  }

  /**
   * The next line. Rejects with protocol_error or payload_too_large when the peer breaks the
   * framing, with `closedError` when the connection ends, and handshake_timeout after
   * `timeoutMs` (null waits for ever; `signal` cancels).
   */
  async next(timeoutMs: number | null, closedError: () => DockfleetError, signal?: AbortSignal): Promise<string> {
    const deadline = timeoutMs === null ? null : Date.now() + timeoutMs;
    for (;;) {
      this.#takeLine();
      const line = this.#lines.shift();
      if (line !== undefined) return line;
      if (this.#failure) throw this.#failure;
      if (this.#closed) throw closedError();
      if (signal?.aborted) throw new DockfleetError('handshake_timeout', 'stopped waiting for the handshake');
      if (deadline !== null && Date.now() >= deadline) throw new DockfleetError('handshake_timeout', 'no handshake answer in time');
      if (this.socket.isPaused()) this.socket.resume();
      await new Promise<void>((resolve) => {
        const timer = deadline === null ? null : setTimeout(done, deadline - Date.now());
        signal?.addEventListener('abort', done, { once: true });
        this.#wake = done;
        function done(): void {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        }
      });
      this.#wake = null;
    }
  }

  /** Stops reading handshake lines; bytes already read beyond them go back to the socket. */
  release(): S {
    this.#released = true;
    const socket = this.socket;
    socket.pause();
    socket.off('data', this.#onData);
    socket.off('end', this.#onClosed);
    socket.off('close', this.#onClosed);
    socket.off('error', this.#onClosed);
    if (this.#pending.length > 0) socket.unshift(this.#pending);
    this.#pending = Buffer.alloc(0);
    return socket;
  }

  /** Ends the connection after the last line has gone out; cut off if the peer lingers. */
  end(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#released || this.#failure) return;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    if (!this.#started) {
      const n = Math.min(this.#pending.length, this.#expectStart.length);
      if (!this.#pending.subarray(0, n).equals(this.#expectStart.subarray(0, n))) {
        return this.#fail(new DockfleetError('protocol_error', 'the gateway stream does not start with the dockfleet WebSocket frame'));
      }
      if (n < this.#expectStart.length) return;
      this.#started = true;
      this.#pending = this.#pending.subarray(this.#expectStart.length);
    }
    this.#takeLine();
    this.#wake?.();
  };

  /** Moves one complete line from the bytes read into the queue, when the queue is empty. */
  #takeLine(): void {
    if (!this.#started || this.#failure || this.#lines.length > 0) return;
    const nl = this.#pending.indexOf(0x0a);
    if (nl >= 0 && nl <= MAX_HANDSHAKE_FRAME) {
      this.#lines.push(this.#pending.subarray(0, nl).toString('utf8'));
      this.#pending = this.#pending.subarray(nl + 1);
      // One line at a time: whatever follows stays unread until it is asked for (or handed on).
      this.socket.pause();
    } else if (nl > MAX_HANDSHAKE_FRAME || this.#pending.length > MAX_HANDSHAKE_FRAME) {
      this.#fail(new DockfleetError('payload_too_large', `handshake line over ${MAX_HANDSHAKE_FRAME} bytes`));
    }
  }

  readonly #onClosed = (): void => {
    this.#closed = true;
    this.#wake?.();
  };

  #fail(err: DockfleetError): void {
    this.#failure = err;
    this.socket.pause();
    this.#wake?.();
  }
}
