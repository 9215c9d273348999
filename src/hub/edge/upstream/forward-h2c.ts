/**
 * A request to an `h2c` app: one stream of the target's HTTP/2 session (h2c-sessions.ts). What
 * gRPC needs passes through: bodies both ways at once (a bidirectional stream is a request body
 * and an answer flowing together), `te: trailers`, and trailers both ways (`grpc-status`,
 * `grpc-message`). The client may speak HTTP/2 or HTTP/1.1; the app always gets HTTP/2.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { abortResponse, appResponseHeaders, passableTrailers, writeResponseHead, type HeaderMap } from '../edge-headers.ts';
import type { H2cSessions } from './h2c-sessions.ts';
import { IdleTimeout, hasNoBody, passBody, sendFailurePage, type Exchange } from './exchange.ts';

const { NGHTTP2_CANCEL } = http2.constants;

/** The request head in HTTP/2 form: pseudo-headers from the HTTP/1.1 form's method, path and host. */
function h2RequestHeaders(x: Exchange): OutgoingHttpHeaders {
  const { host, ...rest } = x.headers as HeaderMap & { host?: string };
  const out: OutgoingHttpHeaders = {
    ':method': x.req.method ?? 'GET',
    ':path': x.path,
    ':scheme': 'http',
    ':authority': host ?? x.target.serverName,
    ...rest,
  };
  // HTTP/2 allows `te` with only this value; gRPC servers insist on it.
  if (/(^|,)\s*trailers\s*(;|,|$)/i.test(String(x.req.headers.te ?? ''))) out.te = 'trailers';
  return out;
}

export function forwardH2c(x: Exchange, sessions: H2cSessions): void {
  let clientGone = false;
  let stream: ClientHttp2Stream | null = null;
  x.res.once('close', () => {
    if (x.res.writableFinished) return;
    clientGone = true;
    if (stream && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
  });
  sessions.session(x.target).then(
    (session) => {
      if (clientGone) return;
      const bodyless = hasNoBody(x.req);
      const upstream = session.request(h2RequestHeaders(x), { endStream: bodyless, waitForTrailers: !bodyless });
      stream = upstream;
      relay(x, upstream);
      if (bodyless) return;
      let trailers: HeaderMap | null = null;
      upstream.once('wantTrailers', () => upstream.sendTrailers(trailers ?? {}));
      passBody(x.req, upstream, (t) => {
        trailers = t;
      });
    },
    (err: unknown) => {
      if (!clientGone) sendFailurePage(x, err);
    },
  );
}

function relay(x: Exchange, upstream: ClientHttp2Stream): void {
  const { res } = x;
  let answered = false;
  let failure: unknown = null;
  upstream.setTimeout(x.idleMs, () => {
    failure = new IdleTimeout();
    upstream.close(NGHTTP2_CANCEL);
  });
  upstream.once('response', (headers: IncomingHttpHeaders) => {
    answered = true;
    writeResponseHead(res, Number(headers[':status'] ?? 502), undefined, appResponseHeaders(headers));
    upstream.pipe(res, { end: false });
  });
  let trailers: HeaderMap | null = null;
  upstream.once('trailers', (t: IncomingHttpHeaders) => {
    trailers = passableTrailers(t);
  });
  upstream.once('end', () => {
    if (!answered) return;
    if (trailers) res.addTrailers(trailers);
    res.end();
  });
  upstream.on('error', (err) => {
    failure ??= err;
  });
  upstream.once('close', () => {
    // Ended cleanly, with or without trailers: 'end' finished the answer.
    if (upstream.rstCode === http2.constants.NGHTTP2_NO_ERROR && failure === null && upstream.readableEnded) return;
    if (answered) return abortResponse(res);
    if (!res.headersSent && !res.destroyed) sendFailurePage(x, failure);
  });
}
