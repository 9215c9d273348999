/**
 * A lingering close for the edge's HTTP/1.1 clients, as nginx and Go's server do one. When an
 * answer ends the connection (the client asked for that, or the answer is an edge page) while
 * the client is still sending its body — an app refusing an upload with 413 before reading it —
 * Node's server destroys the socket as soon as the answer is flushed. The client's bytes that
 * then arrive make the kernel reset the connection, and a reset can destroy the answer on the
 * client's side before it was read (its next write fails first, and the client drops its socket
 * with the answer unread in it: seen in edge-early-answer.test as an upload with no answer).
 * So the edge sends its FIN after the answer and reads and drops what the client still sends
 * until the client closes, for at most LINGER_MS; only then is the socket destroyed.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** Long enough for any client to read an answer that is already in its kernel; short enough that a client ignoring it holds nothing for long. */
export const LINGER_MS = 5_000;

/** The request a kept-alive connection carries now (the one whose answer may end it). */
const current = new WeakMap<Socket, IncomingMessage>();

/** Called for each HTTP/1.1 request the edge takes; the connection's close becomes a lingering one while this request's body is unread. */
export function lingerOnEarlyClose(req: IncomingMessage): void {
  const socket = req.socket as Socket | null;
  if (!socket) return;
  const known = current.has(socket);
  current.set(socket, req);
  if (known) return;
  const destroySoon = socket.destroySoon.bind(socket);
  // Node's server calls this once an answer that ends the connection is written.
  socket.destroySoon = (): void => {
    const req = current.get(socket);
    if (req === undefined || req.complete || socket.destroyed || !socket.readable) return destroySoon();
    // The rest of the body goes nowhere now: read and dropped.
    req.unpipe();
    req.resume();
    socket.end();
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
