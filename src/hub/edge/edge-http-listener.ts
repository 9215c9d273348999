/**
 * The edge's plain-HTTP port (`--edge-http HOST:PORT`): answers ACME's HTTP-01 challenges
 * (`GET /.well-known/acme-challenge/TOKEN` → the key authorization the ChallengeBoard holds, as
 * text/plain; 404 when it holds none) and sends everything else to HTTPS with a 308 to the same
 * host, path and query on the edge port (its port left out when it is 443). 308 keeps the
 * method and body, so a POST is re-sent to HTTPS rather than turned into a GET.
 *
 * Held to the hub's listener limits like every other port: the per-address cap at accept, the
 * head and keep-alive deadlines (Node's own), and the body-stall watch.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../lib/logger.ts';
import { AddressCap } from '../listener/address-cap.ts';
import { BodyStallWatch } from '../listener/body-stall-watch.ts';
import { bodyStalledAnswer } from '../listener/limit-answers.ts';
import { httpServerTimeouts, type ListenerLimits } from '../listener/listener-limits.ts';
import type { ChallengeBoard } from './certs/challenge-board.ts';
import { listenOn } from '../../lib/listen.ts';

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
/** A Host header the redirect may name: a DNS name or IPv4 address, or a bracketed IPv6 one, with an optional port. */
const HOST_HEADER = /^(?:[a-z0-9](?:[a-z0-9.-]{0,252})|\[[0-9a-f:.]{2,45}\])(?::\d{1,5})?$/i;

export interface EdgeHttpListenerOptions {
  host: string;
  port: number;
  /** The edge's HTTPS port, where everything but challenges is sent. */
  httpsPort: number;
  limits: ListenerLimits;
  challenges: ChallengeBoard;
  log: Logger;
}

export interface RunningEdgeHttp {
  readonly port: number;
  close(): void;
}

export async function startEdgeHttpListener(opts: EdgeHttpListenerOptions): Promise<RunningEdgeHttp> {
  const server = http.createServer({ ...httpServerTimeouts(opts.limits) }, (req, res) => answer(req, res, opts));
  const sockets = new Set<Socket>();
  const cap = new AddressCap(opts.limits, (address) => opts.log.warn({ address, perAddress: opts.limits.perAddress }, 'edge HTTP port: connection cap reached for a client address; refusing more'));
  // HTTP's own 'connection' listener starts parsing; it sees only the sockets the cap admits.
  const startHttp = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {});
    if (!cap.admit(socket)) return void socket.destroy();
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    for (const listener of startHttp) listener.call(server, socket);
  });
  const stalls = new BodyStallWatch(opts.limits.bodyStallMs, bodyStalledAnswer);
  server.prependListener('request', (req, res) => stalls.watch(req, res));
  const port = await listenOn(server, opts.host, opts.port);
  return {
    port,
    close() {
      server.close();
      stalls.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

function answer(req: IncomingMessage, res: ServerResponse, opts: EdgeHttpListenerOptions): void {
  const url = req.url ?? '/';
  if ((req.method === 'GET' || req.method === 'HEAD') && url.startsWith(ACME_CHALLENGE_PREFIX)) {
    const token = url.slice(ACME_CHALLENGE_PREFIX.length);
    const keyAuthorization = TOKEN.test(token) ? opts.challenges.httpAnswer(token) : null;
    return plain(res, keyAuthorization === null ? 404 : 200, keyAuthorization ?? 'no such ACME challenge\n');
  }
  const host = req.headers.host ?? '';
  if (!HOST_HEADER.test(host)) return plain(res, 400, 'a Host header naming the site is needed for the redirect to HTTPS\n');
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  const port = opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`;
  const location = `https://${name.toLowerCase()}${port}${pathAndQuery(url)}`;
  // A body the client sends (POST, PUT) is not wanted here: it is re-sent to the HTTPS port.
  const bodyless = req.method === 'GET' || req.method === 'HEAD';
  res.writeHead(308, { location, 'content-type': 'text/plain; charset=utf-8', 'content-length': 0, ...(bodyless ? {} : { connection: 'close' }) });
  res.end();
}

/** The request target's path and query: as sent for origin-form (`/a?b`); from an absolute-form URL its path and query. */
function pathAndQuery(url: string): string {
  if (url.startsWith('/')) return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return '/';
  }
}

function plain(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
