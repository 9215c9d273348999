/**
 * Reads a new connection's ClientHello without taking it: the bytes are collected (at most
 * MAX_CLIENT_HELLO and a few record headers), parsed by client-hello.ts, and put back on the
 * socket before a TLS server takes it, so TLS starts from the first byte as if nothing had
 * looked. The wait is bounded by the listener's handshake deadline, which runs from accept.
 */
import type { Socket } from 'node:net';
import { MAX_CLIENT_HELLO, readClientHello, type HelloReading } from './client-hello.ts';

/** Bytes held while waiting: the largest ClientHello, split into many small records at worst. */
const MAX_PEEK_BYTES = MAX_CLIENT_HELLO + 4 * 1024;

/** Calls `done` once: with the ClientHello (its bytes back on the socket, which is paused), or
 * with why there is none (malformed, too large, or the client went away first). */
export function peekClientHello(socket: Socket, done: (reading: HelloReading) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (reading: HelloReading): void => {
    if (finished) return;
    finished = true;
    socket.off('readable', onReadable);
    socket.off('end', onGone);
    socket.off('close', onGone);
    if (reading.kind === 'hello') socket.unshift(Buffer.concat(chunks, size));
    done(reading);
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!finished && (chunk = socket.read() as Buffer | null) !== null) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_PEEK_BYTES) return finish({ kind: 'malformed', reason: 'no complete ClientHello in the first bytes' });
      const reading = readClientHello(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
      if (reading.kind !== 'more') return finish(reading);
    }
  };
  const onGone = (): void => finish({ kind: 'malformed', reason: 'the client went away before its ClientHello ended' });
  socket.on('readable', onReadable);
  socket.once('end', onGone);
  socket.once('close', onGone);
  // The connection guard starts this once the first bytes are in (handshake admission): they
  // wait in the buffer, and no new 'readable' announces them.
  if (socket.readableLength > 0) onReadable();
}
