/**
 * A WebSocket as a byte stream for HTTP/2: binary messages are the stream's bytes, text
 * messages are out-of-band control frames handed to `onText` (so the hub can still say
 * "revoked" after the channel switched to HTTP/2). Reading pauses the socket when the
 * consumer is full, so a slow reader pushes back on the peer through TCP.
 */
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket;

  /** `initial`: binary messages already taken off the socket, delivered first. */
  constructor(ws: WebSocket, onText: (text: string) => void, initial: Buffer[] = []) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    for (const buf of initial) this.push(buf);
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (!isBinary) return onText(buf.toString('utf8'));
      if (!this.push(buf)) ws.pause();
    });
    ws.once('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return callback(new Error('websocket is not open'));
    this.#ws.send(chunk, { binary: true }, callback);
  }

  /** HTTP/2 writes come corked in bursts (9-byte frame headers, then payloads): one WebSocket
   * message, and so one TLS record, for the whole burst instead of one per piece. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.OPEN) return callback(new Error('websocket is not open'));
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#ws.send(data, { binary: true }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ws.close(1000);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== this.#ws.CLOSED) this.#ws.terminate();
    callback(error);
  }
}
