/**
 * A request to an `http` or `https` app: HTTP/1.1 on a pooled connection (dial-agent.ts), the
 * answer streamed back with its trailers, both ways with backpressure. The app's silence for
 * the route's idle time ends the exchange (504 before an answer; a cut answer after). A request
 * without a body that fails on a kept connection before any answer (the app closed it while it
 * sat idle) is sent once more on a fresh one, as the client would have done.
 */
import http, { type IncomingMessage } from 'node:http';
import { abortResponse, appResponseHeaders, passableTrailers, writeResponseHead } from '../edge-headers.ts';
import { backendKey } from './backend-target.ts';
import type { DialAgent, PooledRequestOptions } from './dial-agent.ts';
import { IDEMPOTENT, IdleTimeout, hasNoBody, passBody, sendFailurePage, type Exchange } from './exchange.ts';

export function forwardHttp1(x: Exchange, agent: DialAgent): void {
  const bodyless = hasNoBody(x.req);
  const method = x.req.method ?? 'GET';
  const headers = { ...x.headers };
  // A body of unknown length goes chunked whatever the method (Node would send it unframed on a GET).
  if (!bodyless && headers['content-length'] === undefined) headers['transfer-encoding'] = 'chunked';
  let clientGone = false;
  let current: http.ClientRequest | null = null;
  x.res.once('close', () => {
    if (x.res.writableFinished) return;
    clientGone = true;
    current?.destroy();
  });

  const attempt = (mayRetry: boolean): void => {
    const options: PooledRequestOptions = {
      agent,
      method,
      path: x.path,
      headers,
      timeout: x.idleMs,
      setHost: false,
      edgeKey: backendKey(x.target),
      edgeTarget: x.target,
    };
    const upstream = http.request(options);
    current = upstream;
    let answered = false;
    upstream.once('timeout', () => upstream.destroy(new IdleTimeout()));
    upstream.once('response', (answer) => {
      answered = true;
      relayAnswer(answer, x);
    });
    upstream.on('error', (err) => {
      if (clientGone) return;
      // The answer was relayed whole (the app hung up on the rest of an upload): it stands.
      if (answered) return void (x.res.writableEnded || abortResponse(x.res));
      if (mayRetry && upstream.reusedSocket && bodyless && IDEMPOTENT.has(method) && !(err instanceof IdleTimeout)) return attempt(false);
      sendFailurePage(x, err);
    });
    if (bodyless) upstream.end();
    else passBody(x.req, upstream, (t) => upstream.addTrailers(t));
  };
  attempt(true);
}

function relayAnswer(answer: IncomingMessage, x: Exchange): void {
  const { res } = x;
  writeResponseHead(res, answer.statusCode ?? 502, answer.statusMessage, appResponseHeaders(answer.headers));
  answer.pipe(res, { end: false });
  answer.once('end', () => {
    const trailers = passableTrailers(answer.trailers);
    if (trailers) res.addTrailers(trailers);
    res.end();
  });
  // The app or its connection went away mid-answer: the client must see it cut, not complete.
  answer.once('aborted', () => abortResponse(res));
  answer.once('error', () => abortResponse(res));
}
