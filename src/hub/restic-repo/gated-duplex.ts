/**
 * A restic connection's bytes as the hub's repository server reads and writes them: a Duplex over
 * the link's reverse stream (its answer body in, its request body out) that reads only while the
 * link's QoS gate is open. restic's uploads are bulk; while a management call is in flight on
 * the same link they stop being read, the stream's window closes, and the agent stops sending
 * (link-qos.ts). Nothing here destroys the HTTP/2 stream: it is cancelled (see h2-channel.ts).
 */
import type { ClientHttp2Stream } from 'node:http2';
import { Duplex } from 'node:stream';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { FlowGate } from '../../lib/relay.ts';

export class GatedDuplex extends Duplex {
  readonly #outer: ClientHttp2Stream;
  readonly #gate: FlowGate;
  readonly #stopGate: () => void;
  #wanted = false;

  constructor(outer: ClientHttp2Stream, gate: FlowGate) {
    super({ allowHalfOpen: true, readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.#outer = outer;
    this.#gate = gate;
    outer.pause();
    outer.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.#wanted = false;
      if (!this.#wanted || gate.closed()) outer.pause();
    });
    outer.once('end', () => this.push(null));
    outer.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
    outer.on('error', () => {});
    this.#stopGate = gate.onOpen(() => {
      if (this.#wanted) outer.resume();
    });
  }

  override _read(): void {
    this.#wanted = true;
    if (!this.#gate.closed()) this.#outer.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#outer.destroyed || this.#outer.closed) return cb(new Error('the link stream is gone'));
    if (this.#outer.write(chunk)) return cb();
    const drained = (): void => settle(null);
    const closed = (): void => settle(new Error('the link stream is gone'));
    const settle = (err: Error | null): void => {
      this.#outer.off('drain', drained);
      this.#outer.off('close', closed);
      cb(err);
    };
    this.#outer.on('drain', drained);
    this.#outer.on('close', closed);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.#outer.writableEnded) this.#outer.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#stopGate();
    cancelUnlessDone(this.#outer);
    cb(err);
  }
}
