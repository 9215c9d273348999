/**
 * The agent's side of the gateway upgrade: asks the hub (over the dialed TLS socket) for the
 * WebSocket upgrade, checks the answer, and starts its half of the stream (gateway-stream.ts).
 * A hub that refuses with a 4xx will not change its mind (wrong path, old protocol): that is
 * fatal, except 429, which says "not now"; a 5xx (a proxy in between with no hub behind it) is
 * worth retrying, after its Retry-After when it has one.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { TLSSocket } from 'node:tls';
import { DockfleetError } from '../protocol/errors.ts';
import { AGENT_STREAM_START, HUB_STREAM_START, HandshakeStream, websocketAccept } from '../protocol/gateway-stream.ts';
import { GATEWAY_PATH, GATEWAY_SUBPROTOCOL } from '../protocol/handshake.ts';
import { readBounded } from '../lib/read-bounded.ts';

export function upgradeToGateway(socket: TLSSocket, hubUrl: URL, timeoutMs: number): Promise<HandshakeStream<TLSSocket>> {
  const key = randomBytes(16).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request({
      createConnection: () => socket,
      method: 'GET',
      path: GATEWAY_PATH,
      setHost: false,
      headers: {
        host: hubUrl.host,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': GATEWAY_SUBPROTOCOL,
      },
    });
    // A timer of our own, cleared at the answer: http.request's `timeout` option is an idle
    // timeout on the socket, and this socket lives on as the channel.
    const timer = setTimeout(() => req.destroy(new Error('no answer to the gateway upgrade in time')), timeoutMs);
    req.once('close', () => clearTimeout(timer));
    // With createConnection, the upgraded socket is the very TLS socket this request was given.
    req.once('upgrade', (res, _upgraded, head) => {
      clearTimeout(timer);
      if (res.headers['sec-websocket-accept'] !== websocketAccept(key) || res.headers['sec-websocket-protocol'] !== GATEWAY_SUBPROTOCOL) {
        socket.destroy();
        return reject(new DockfleetError('protocol_error', `hub ${hubUrl.host} answered the upgrade without the ${GATEWAY_SUBPROTOCOL} handshake`));
      }
      if (head.length > 0) socket.unshift(head);
      socket.write(AGENT_STREAM_START);
      resolve(new HandshakeStream(socket, HUB_STREAM_START));
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      const status = res.statusCode ?? 0;
      void readBounded(res as AsyncIterable<Buffer>, 4096)
        .catch(() => null)
        .then((body) => {
          socket.destroy();
          let reason = '';
          try {
            // The gateway's own refusals say {message}; the listener's say {error: {message}}.
            const parsed = JSON.parse(body?.toString('utf8') ?? '') as { message?: unknown; error?: { message?: unknown } };
            reason = String(parsed.message ?? parsed.error?.message ?? '');
          } catch {
            // Not ours (a proxy's page): the status says enough.
          }
          const message = `hub ${hubUrl.host} refused the gateway upgrade: HTTP ${status}${reason ? ` (${reason.slice(0, 200)})` : ''}`;
          // "Not now" (a 429: too many links from this address; or any answer that says when to
          // come back): retried, no sooner than its Retry-After.
          const retryAfterMs = retryAfter(res.headers['retry-after']);
          if (status === 429 || retryAfterMs !== undefined) return reject(new DockfleetError('rate_limited', message, { cause: retryAfterMs ?? 30_000 }));
          reject(new DockfleetError(status >= 400 && status < 500 ? 'protocol_error' : 'hub_unreachable', message));
        });
    });
    req.once('error', (err) => reject(new DockfleetError('hub_unreachable', `gateway upgrade: ${err.message}`, { cause: err })));
    req.end();
  });
}

/** Retry-After in whole seconds (the form the hub sends), as milliseconds; at most an hour. */
function retryAfter(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Math.min(3_600, Number(value.trim())) * 1000;
}
