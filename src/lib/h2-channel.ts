/**
 * HTTP/2 tuning and heartbeats shared by both ends of the agent channel. Node's defaults keep
 * only 64 KiB in flight per session, which caps a long-haul stream at a few MB/s. Per-stream
 * receive windows are sized to the link's round trip (see WindowSizer): big enough to fill a
 * 50 ms link, small on a short one, because whatever a window lets in flight waits in the
 * socket queues ahead of every other call on that link.
 */
import { constants, type ClientHttp2Session, type Http2Stream, type ServerHttp2Session, type Settings } from 'node:http2';
import type { Readable } from 'node:stream';
import { OwnStall } from './own-stall.ts';

/** Before the first round trip is measured: room for a long link. */
export const STREAM_WINDOW_INITIAL = 8 * 1024 * 1024;
/**
 * The least a stream may have in flight. On a short link the round trip is not what limits a
 * stream but the other process's turn on a busy CPU: ~3 ms at ~170 MB/s on this 2-core class of
 * machine. Measured during a 1 GiB export on loopback, /_ping through the same link: p50 25 ms
 * with 8 MiB windows, 8.5 ms with 512 KiB, 5.7 ms with 256 KiB (but then the export slowed 20 %).
 */
export const STREAM_WINDOW_FLOOR = 512 * 1024;
export const STREAM_WINDOW_MAX = 16 * 1024 * 1024;
/** Beyond the floor, a window holds one round trip at this rate (bytes per ms: 128 MB/s). */
const WINDOW_BYTES_PER_RTT_MS = 128_000;

export const H2_SETTINGS: Settings = {
  initialWindowSize: STREAM_WINDOW_INITIAL,
  maxFrameSize: 64 * 1024,
  // Every edge connection (an open WebSocket, a kept backend connection) holds one stream for
  // as long as it lives: 10,000 idle WebSockets to one node need room beyond the 4,096 this once
  // was. The edge keeps EDGE_STREAMS_RESERVED of them for the node's own management calls.
  maxConcurrentStreams: 16_384,
  enablePush: false,
};
/** Connection-level receive window: shared by all streams of one agent. */
export const H2_SESSION_WINDOW = 32 * 1024 * 1024;
/** Bounds what nghttp2 may buffer for one session before it refuses new streams. */
export const H2_MAX_SESSION_MEMORY_MB = 64;

/** The per-stream receive window for a link whose round trip is `rttMs`. */
export function streamWindowFor(rttMs: number): number {
  return Math.min(STREAM_WINDOW_MAX, Math.round(STREAM_WINDOW_FLOOR + Math.max(0, rttMs) * WINDOW_BYTES_PER_RTT_MS));
}

type AnySession = ClientHttp2Session | ServerHttp2Session;

/** Sends an HTTP/2 PING; `onAck` gets its round trip in ms. A refused or failed ping is
 * dropped: Node throws when too many are outstanding. */
function pingForRtt(session: AnySession, onAck: (ms: number) => void): void {
  try {
    session.ping((err, ms) => {
      if (!err) onAck(ms);
    });
  } catch {
    // Dropped, as said above.
  }
}

export function widenSessionWindow(session: AnySession): void {
  const apply = (): void => {
    if (!session.destroyed) session.setLocalWindowSize(H2_SESSION_WINDOW);
  };
  if (session.connecting) session.once('connect', apply);
  else apply();
}

export interface HeartbeatOptions {
  intervalMs: number;
  deadAfterMs: number;
  onDead: () => void;
  onAlive?: () => void;
  /** Each acknowledged ping's round trip, in ms. */
  onRtt?: (ms: number) => void;
}

/** Sends an HTTP/2 PING every interval; declares the link dead when nothing has been
 * acknowledged for `deadAfterMs` (not on a tick that came late: own-stall.ts). Returns a
 * function that stops it. */
export function startHeartbeat(session: AnySession, opts: HeartbeatOptions): () => void {
  let lastAck = Date.now();
  const stall = new OwnStall(opts.intervalMs);
  const timer = setInterval(() => {
    if (session.destroyed) return stop();
    if (stall.onTime() && Date.now() - lastAck > opts.deadAfterMs) {
      stop();
      opts.onDead();
      return;
    }
    // Too many outstanding pings means the peer is silent; the deadline above handles it.
    pingForRtt(session, (ms) => {
      lastAck = Date.now();
      opts.onAlive?.();
      opts.onRtt?.(ms);
    });
  }, opts.intervalMs);
  timer.unref();
  const stop = (): void => clearInterval(timer);
  return stop;
}

/**
 * Cancels a stream the other side may still be working on. A stream that has already ended
 * both ways is left alone even when its 'close' event is still pending: a RST_STREAM for a
 * stream the peer has closed counts as an invalid frame there, and Node ends a session after
 * 1,000 of those (seen: the channel dropped after ~1,700 quick calls).
 */
export function cancelUnlessDone(stream: Http2Stream): void {
  if (stream.closed || stream.destroyed || (stream.readableEnded && stream.writableEnded)) return;
  stream.close(constants.NGHTTP2_CANCEL);
}

/**
 * Sends `source` as the body of an HTTP/2 stream, with backpressure, and never destroys the
 * stream itself: a source that fails cancels it (RST_STREAM), and a stream that closes (its
 * answer is whole, or it was reset) stops the copy. Not stream.pipeline: on the stream's
 * 'close' it destroys the stream at once, and Node (20) then drops the stream's handle before
 * the RST_STREAM that close() was about to send — nghttp2 keeps the stream open and asks for
 * its queued body forever (empty DATA frames, the event loop held, memory without bound). Seen
 * when an engine answered an upload with 404 before reading it.
 */
export function sendBody(source: Readable, stream: Http2Stream): void {
  source.pipe(stream);
  source.once('error', () => cancelUnlessDone(stream));
  stream.once('close', () => source.unpipe(stream));
}

/**
 * Sizes this side's per-stream receive windows (SETTINGS_INITIAL_WINDOW_SIZE, which per RFC 9113
 * applies to open streams too) to the smallest round trip seen on the link. Only the minimum
 * counts: a ping that waited behind a bulk transfer measures the queue, not the path, and
 * sizing the window to it would let the queue grow further. A reconnect measures afresh.
 */
export class WindowSizer {
  readonly #session: AnySession;
  readonly #onResize: ((window: number, rttMs: number) => void) | undefined;
  #minRttMs = Number.POSITIVE_INFINITY;
  #window = STREAM_WINDOW_INITIAL;

  constructor(session: AnySession, onResize?: (window: number, rttMs: number) => void) {
    this.#session = session;
    this.#onResize = onResize;
  }

  get window(): number {
    return this.#window;
  }

  get minRttMs(): number {
    return this.#minRttMs;
  }

  sample(rttMs: number): void {
    if (!(rttMs >= 0 && rttMs < this.#minRttMs)) return;
    this.#minRttMs = rttMs;
    const want = streamWindowFor(rttMs);
    // Small changes are not worth a SETTINGS round trip.
    if (Math.abs(want - this.#window) < this.#window / 8) return;
    this.#window = want;
    if (this.#session.destroyed || this.#session.closed) return;
    this.#session.settings({ initialWindowSize: want });
    this.#onResize?.(want, rttMs);
  }

  /** Sends one ping now and feeds its round trip in (with too many outstanding, the next
   * probe will do); `onRtt` also hears it (the hub's metrics). */
  probe(onRtt?: (ms: number) => void): void {
    const s = this.#session;
    if (s.destroyed || s.closed || s.connecting) return;
    pingForRtt(s, (ms) => {
      this.sample(ms);
      onRtt?.(ms);
    });
  }
}
