/**
 * The listener limits for HTTP/2 connections on the edge port, which Node's HTTP/1.1 deadlines
 * (headersTimeout, keepAliveTimeout) and the connection guard's body-stall watch do not reach:
 *
 * - head deadline: a session must have a request whose HEADERS arrived whole within `headMs` of
 *   the handshake, and again within `headMs` each time its last open stream closes (an idle
 *   session is closed as an idle keep-alive connection is). PINGs and SETTINGS do not count, so
 *   a client that opens a session and sends no HEADERS, or dribbles a header block, is cut.
 * - body stall: a stream whose request body brings no byte for `bodyStallMs` while the edge is
 *   ready to read it (not paused by backpressure) gets a 408 and is closed; the session and its
 *   other streams go on. An answer still flowing keeps it alive, a complete body ends the watch.
 *
 * Stream count and header size are bounded by the session settings (EDGE_H2_SETTINGS).
 */
import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session, type Settings } from 'node:http2';
import type { ListenerLimits } from '../listener/listener-limits.ts';

/** Streams one client may have open at once on one connection (browsers open up to 100). */
export const EDGE_H2_MAX_STREAMS = 100;
/** The largest request head, as HTTP/2 counts it (name + value + 32 per field): HTTP/1.1's 16 KiB plus that overhead. */
export const EDGE_H2_MAX_HEADER_LIST = 16 * 1024 + 32 * 64;

export const EDGE_H2_SETTINGS: Settings = Object.freeze({
  maxConcurrentStreams: EDGE_H2_MAX_STREAMS,
  maxHeaderListSize: EDGE_H2_MAX_HEADER_LIST,
  enablePush: false,
});

/** Holds one server session to the head deadline (see the header comment). */
export function holdSessionToHeadDeadline(session: ServerHttp2Session, limits: ListenerLimits): void {
  let open = 0;
  let timer: NodeJS.Timeout | null = null;
  const arm = (): void => {
    timer = setTimeout(() => {
      timer = null;
      if (open > 0 || session.destroyed) return;
      session.close();
      // A client that never reads cannot keep the socket open with the GOAWAY unsent.
      setTimeout(() => session.destroy(), 1_000).unref();
    }, limits.headMs).unref();
  };
  arm();
  session.on('stream', (stream) => {
    open++;
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    stream.once('close', () => {
      open--;
      if (open === 0 && !session.destroyed && !session.closed) arm();
    });
  });
  session.once('close', () => {
    if (timer) clearTimeout(timer);
    timer = null;
  });
}

/** The answer for a cut HTTP/2 request body (the same error body as HTTP/1.1's 408). */
export type H2StallAnswer = (stalledMs: number) => { status: number; headers: Record<string, string>; body: string };

/** Watches one HTTP/2 request's body for a stall (see the header comment). */
export function watchH2Body(req: Http2ServerRequest, res: Http2ServerResponse, stallMs: number, answer: H2StallAnswer): void {
  const stream = req.stream;
  if (stream.destroyed || stream.endAfterHeaders) return;
  const done = (): boolean => stream.destroyed || stream.closed || stream.state.remoteClose === 1;
  const onQuiet = (): void => {
    if (done()) return void stream.setTimeout(0);
    // Held back by the edge itself (the app reads slower than the client sends): not a stall.
    if (stream.isPaused() || stream.readableLength > 0) return void stream.setTimeout(stallMs);
    stream.setTimeout(0);
    if (!res.headersSent) {
      const cut = answer(stallMs);
      res.writeHead(cut.status, { ...cut.headers, 'content-length': String(Buffer.byteLength(cut.body)) });
      res.end(cut.body);
    }
    // RST_STREAM once the answer is out (NO_ERROR: the client may stop sending); a client that
    // never reads it loses the stream a second later anyway.
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
    setTimeout(() => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    }, 1_000).unref();
  };
  // The stream's own timer restarts on every frame read or written on it.
  stream.setTimeout(stallMs, onQuiet);
  stream.once('close', () => stream.setTimeout(0));
  req.once('end', () => stream.setTimeout(0));
}
