/**
 * The agent's half of the edge: on EDGE_DIAL_PATH it connects to a running container's address
 * on this host (from the engine's own answer, never from the hub's word; running-addresses.ts
 * remembers it between dials only while the engine's events say nothing changed) and pipes the
 * TCP socket through the HTTP/2 stream, with backpressure both ways. Nothing but a running
 * container's network address on this engine is ever dialled, so the hub cannot use the agent
 * to reach other hosts on its network. When the engine says a container stopped, its
 * connections are closed at once (the hub keeps some for reuse; none may outlive the container).
 */
import net from 'node:net';
import type { Http2ServerRequest, Http2ServerResponse, Http2Stream } from 'node:http2';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import { EDGE_DIAL_REASON_HEADER, parseEdgeDial, type EdgeDialRefusal } from '../../protocol/edge-dial.ts';
import type { EngineClient } from '../engine-client.ts';
import type { Logger } from '../../lib/logger.ts';
import type { TunnelHandler } from '../tunnel-handler.ts';
import { RunningAddresses } from './running-addresses.ts';

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * After the container's answer ended cleanly, how long and how much of the hub's rest (an upload
 * the app did not want) is read and dropped before the stream is cancelled. The hub stops sending
 * as soon as its client has the answer, so a few seconds cover any real exchange, and 256 MiB at
 * link speed takes well under that; past either, the hub is either stalled or ignoring the end.
 * The same time bounds reading the app's last bytes after a write it refused (below).
 */
const LINGER_MS = 10_000;
const LINGER_BYTES = 256 * 1024 * 1024;

/**
 * The stream is the connection from here on: the hub's bytes in, the container's out, each end a
 * half-close. The request side is read through the compatibility layer (piping the raw stream
 * both ways at once cut downloads whose client paused — seen in edge-proxy.test). Nothing here
 * destroys the HTTP/2 stream: destroyed while the hub still sends (the container answered an
 * upload early and hung up), Node drops its handle before the RST_STREAM goes out and nghttp2
 * spins on it forever (see sendBody in h2-channel.ts); it is closed with a CANCEL instead.
 *
 * How the container's connection ended decides what the hub sees:
 * - its FIN came and everything before it was read (the app finished its answer, even if it then
 *   reset the connection because it left our upload unread): the stream's side ends after every
 *   byte the app sent, with no reset (a RST_STREAM can overtake queued DATA, and the hub drops
 *   what it had not read: a 413 became a 502, seen in edge-early-answer.test). Then, like an
 *   HTTP server's lingering close, what the hub still sends is read and dropped until it ends
 *   or cancels the stream (bounded above).
 * - anything else (reset mid-answer, the container stopped or killed, the app's rest not read in
 *   time): cancelled at once, so the hub sees an aborted stream and an answer cut short
 *   (close-delimited ones too) never looks whole.
 */
function passBytes(req: Http2ServerRequest, socket: net.Socket, stream: Http2Stream): void {
  req.pipe(socket);
  socket.pipe(stream);
  readToTheEndAfterRefusedWrite(socket, () => req.unpipe(socket));
  socket.once('close', () => {
    req.unpipe(socket);
    socket.unpipe(stream);
    if (!socket.readableEnded) return cancelUnlessDone(stream);
    if (!stream.writableEnded) stream.end();
    linger(req, stream);
  });
  // The hub reset the stream, or it closed before both sides were through: the container's
  // connection goes too. (After a clean end both ways the socket finishes what it was given.)
  stream.once('close', () => {
    socket.unpipe(stream);
    if (!(stream.readableEnded && stream.writableFinished)) socket.destroy();
  });
}

/**
 * A write the app refused with EPIPE (Linux's word for a reset that came after the app's FIN)
 * must not throw away what the app sent before that FIN: Node destroys a socket on any write
 * error, and a destroyed socket's unread bytes are gone — the app's 413 sat in the kernel while
 * the agent's write to it failed first (seen in edge-early-answer.test: a 502 instead). So the
 * destroy waits until the app's bytes are read to their end (the kernel still holds them and
 * the FIN), bounded by LINGER_MS; `stopWriting` stops the hub's bytes going to it meanwhile.
 * (The write error also marks the socket's readable side errored, which stops all reading:
 * that mark is cleared here, the one use of Node's stream internals in this file.)
 * Any other failure (ECONNRESET: a reset with no FIN, the answer cut) destroys at once.
 */
function readToTheEndAfterRefusedWrite(socket: net.Socket, stopWriting: () => void): void {
  const destroy = socket.destroy.bind(socket);
  let holding = false;
  socket.destroy = (err?: Error): net.Socket => {
    if (holding && err) return socket;
    if (holding || !err || (err as NodeJS.ErrnoException).code !== 'EPIPE' || socket.destroyed || socket.readableEnded) return destroy(err);
    holding = true;
    stopWriting();
    // Node marks the reading side failed as well on a write error (no more reads, what comes is
    // dropped); the app's bytes are still to be read, so that mark is taken back and reading goes on.
    (socket as unknown as { _readableState: { errored: Error | null } })._readableState.errored = null;
    socket.read(0);
    const timer = setTimeout(() => destroy(err), LINGER_MS);
    timer.unref();
    socket.once('end', () => {
      clearTimeout(timer);
      destroy(err);
    });
    socket.once('close', () => clearTimeout(timer));
    return socket;
  };
}

/** Reads and drops the hub's rest until it ends or cancels the stream, or the bounds run out; then cancels. */
function linger(req: Http2ServerRequest, stream: Http2Stream): void {
  if (stream.closed || stream.destroyed || req.readableEnded) return;
  let dropped = 0;
  const stop = (): void => {
    clearTimeout(timer);
    req.removeListener('data', count);
    cancelUnlessDone(stream);
  };
  const count = (chunk: Buffer): void => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) stop();
  };
  const timer = setTimeout(stop, LINGER_MS);
  timer.unref();
  req.on('data', count);
  req.once('end', stop);
  stream.once('close', () => clearTimeout(timer));
  req.resume();
}

function refuse(res: Http2ServerResponse, status: number, reason: EdgeDialRefusal, message: string): void {
  const body = JSON.stringify({ reason, message });
  res.writeHead(status, { 'content-type': 'application/json', [EDGE_DIAL_REASON_HEADER]: reason });
  res.end(body);
}

const MESSAGES = {
  no_container: [404, 'no container %s on this host'],
  not_running: [503, 'container %s is not running'],
  no_address: [503, 'container %s has no network address'],
} as const;

/** `permit`: this host's policy on the edge's connections (null when allowed, else the reason). */
export function createContainerDialer(engine: EngineClient, log: Logger, permit: () => string | null = () => null): TunnelHandler {
  /** Open connections per container ID as dialled (a full ID from the hub's routes). */
  const open = new Map<string, Set<net.Socket>>();
  const addresses = new RunningAddresses(engine, log, (containerId) => {
    for (const socket of open.get(containerId) ?? []) socket.destroy();
  });
  return async (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const dial = req.method === 'POST' ? parseEdgeDial(req.url) : null;
    if (!dial) return refuse(res, 400, 'bad_request', 'a dial wants POST with container=ID and port=1..65535');
    const refusal = permit();
    if (refusal !== null) {
      log.warn({ container: dial.containerId.slice(0, 12), port: dial.port, reason: refusal }, 'edge connection refused by local policy');
      return refuse(res, 403, 'policy', refusal);
    }
    const found = await addresses.lookup(dial.containerId);
    if (!found.ok) {
      const [status, message] = MESSAGES[found.reason];
      return refuse(res, status, found.reason, message.replace('%s', dial.containerId.slice(0, 12)));
    }
    if (!found.ports.includes(dial.port)) {
      // The hub's word is not enough: only what the container's own labels publish is reachable.
      return refuse(res, 403, 'port_not_published', `container ${dial.containerId.slice(0, 12)} does not publish port ${dial.port} by its ingress labels`);
    }
    if (req.stream.destroyed) return;

    const socket = net.connect({ host: found.address, port: dial.port, noDelay: true });
    let sockets = open.get(dial.containerId);
    if (!sockets) open.set(dial.containerId, (sockets = new Set()));
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && open.get(dial.containerId) === sockets) open.delete(dial.containerId);
    });
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connect timed out')));
    // Every error is heard (the pipe below adds no listener of its own that survives the first).
    let connected = false;
    socket.on('error', (err) => {
      if (!connected) refuse(res, 502, 'connect_failed', `port ${dial.port} of the container refused: ${err.message}`);
      else log.debug({ err, container: dial.containerId.slice(0, 12) }, 'edge connection ended');
    });
    socket.once('connect', () => {
      connected = true;
      socket.setTimeout(0);
      res.writeHead(200);
      passBytes(req, socket, res.stream);
    });
    req.stream.once('close', () => {
      if (!socket.destroyed && !res.headersSent) socket.destroy();
    });
  };
}
