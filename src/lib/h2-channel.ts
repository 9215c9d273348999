/**
 * HTTP/2 tuning and heartbeats shared by both ends of the agent channel. Node's defaults keep
 * only 64 KiB in flight per session, which caps a long-haul stream at a few MB/s; these windows
 * let one stream fill a 50 ms link while HTTP/2 flow control still bounds memory per stream.
 */
import { constants, type ClientHttp2Session, type Http2Stream, type ServerHttp2Session, type Settings } from 'node:http2';

export const H2_SETTINGS: Settings = {
  initialWindowSize: 8 * 1024 * 1024,
  maxFrameSize: 64 * 1024,
  maxConcurrentStreams: 4096,
  enablePush: false,
};
/** Connection-level receive window: shared by all streams of one agent. */
export const H2_SESSION_WINDOW = 32 * 1024 * 1024;
/** Bounds what nghttp2 may buffer for one session before it refuses new streams. */
export const H2_MAX_SESSION_MEMORY_MB = 64;

type AnySession = ClientHttp2Session | ServerHttp2Session;

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
}

/** Sends an HTTP/2 PING every interval; declares the link dead when nothing has been
 * acknowledged for `deadAfterMs`. Returns a function that stops it. */
export function startHeartbeat(session: AnySession, opts: HeartbeatOptions): () => void {
  let lastAck = Date.now();
  const timer = setInterval(() => {
    if (session.destroyed) return stop();
    if (Date.now() - lastAck > opts.deadAfterMs) {
      stop();
      opts.onDead();
      return;
    }
    try {
      session.ping((err) => {
        if (err) return;
        lastAck = Date.now();
        opts.onAlive?.();
      });
    } catch {
      // Too many outstanding pings means the peer is silent; the deadline above handles it.
    }
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
