/**
 * The edge port (`--edge-listen HOST:PORT`): public HTTPS for the apps that labels publish,
 * apart from the management port. Browsers get HTTP/2 (ALPN `h2`), everyone else HTTP/1.1 on
 * the same port; one pair of handlers (the proxy's) serves both, and HTTP/1.1 upgrades
 * (WebSocket) still come as 'upgrade' events. The certificate comes from a function of the SNI
 * name, so ACME and user-supplied certificates are served per host from the next handshake on.
 * Each connection's ClientHello is read before TLS starts: one offering `acme-tls/1` goes to the
 * TLS-ALPN-01 responder (certs/alpn-responder.ts), bytes that are no ClientHello are closed.
 *
 * Every connection is held to the hub's listener limits whichever protocol it speaks: the
 * per-address cap and the handshake deadline at accept (the connection guard), the head and
 * keep-alive deadlines (Node's own for HTTP/1.1; set on the server by hand, since http2's
 * HTTP/1.1 fallback ignores the options; edge-h2-limits.ts for HTTP/2), the body-stall watch
 * (the guard's for HTTP/1.1, per stream for HTTP/2), and HTTP/2's stream and header-size bounds.
 * An HTTP/1.1 request the parser refuses gets Node's answer (400, 408, 413, 431) and a graceful
 * close, so the answer is read even while the client is still sending.
 * Agents never connect here: no upgrade counts as an agent link.
 */
import http2, { type Http2SecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Logger } from '../../lib/logger.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { ConnectionGuard, type UpgradeListener } from '../listener/connection-guard.ts';
import { bodyStalledAnswer } from '../listener/limit-answers.ts';
import { httpServerTimeouts, type ListenerLimits } from '../listener/listener-limits.ts';
import { SERVER_CIPHER_PREFERENCE } from '../listener/tls-ciphers.ts';
import { EDGE_H2_SETTINGS, holdSessionToHeadDeadline, watchH2Body } from './edge-h2-limits.ts';
import { ACME_TLS_ALPN, AlpnResponder } from './certs/alpn-responder.ts';
import { ChallengeBoard } from './certs/challenge-board.ts';
import { peekClientHello } from './certs/hello-peek.ts';
import { listenOn } from '../../lib/listen.ts';

/** The certificate and key for a server name (SNI, lowercase; '' when the client sent none). */
export type EdgeCertificateSource = (serverName: string) => { cert: string; key: string };

/** What the edge port hands its requests to (the proxy): HTTP/1.1 and HTTP/2 requests alike. */
export interface EdgeHandlers {
  handleRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void;
  handleUpgrade: UpgradeListener;
}

export interface EdgeListenerOptions {
  host: string;
  port: number;
  limits: ListenerLimits;
  certificate: EdgeCertificateSource;
  proxy: EdgeHandlers;
  /** ACME challenges in flight: TLS-ALPN-01 certificates are served from here (default: none ever). */
  challenges?: ChallengeBoard;
  log: Logger;
}

export interface RunningEdge {
  readonly port: number;
  close(): void;
}

export async function startEdgeListener(opts: EdgeListenerOptions): Promise<RunningEdge> {
  const contexts = new SecureContexts(opts.certificate);
  const fallback = opts.certificate('');
  const server = http2.createSecureServer({
    cert: fallback.cert,
    key: fallback.key,
    minVersion: 'TLSv1.2',
    ...SERVER_CIPHER_PREFERENCE,
    allowHTTP1: true,
    ALPNProtocols: ['h2', 'http/1.1'],
    settings: EDGE_H2_SETTINGS,
    SNICallback: (name, done) => {
      try {
        done(null, contexts.forName(name.toLowerCase()));
      } catch (err) {
        done(err as Error);
      }
    },
    allowHalfOpen: true,
    handshakeTimeout: opts.limits.handshakeMs,
  });
  holdHttp1Fallback(server, opts.limits);
  const responder = new AlpnResponder({
    board: opts.challenges ?? new ChallengeBoard(),
    normalContext: (name) => contexts.forName(name),
    fallback,
    handshakeMs: opts.limits.handshakeMs,
  });
  // The TLS server's own 'connection' listener starts TLS; it runs once the ClientHello has been
  // read (and put back), unless the hello offers acme-tls/1. The guard, attached below, wraps
  // all of this: only admitted sockets get here, and the handshake deadline covers the read.
  const startTls = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    peekClientHello(socket, (hello) => {
      if (hello.kind !== 'hello') return void socket.destroy();
      if (hello.alpn.includes(ACME_TLS_ALPN)) return responder.take(socket);
      for (const listener of startTls) listener.call(server, socket);
    });
  });
  const guard = new ConnectionGuard({
    limits: opts.limits,
    log: opts.log,
    isAgentUpgrade: () => false,
    stallAnswer: bodyStalledAnswer,
    agentLinksFullAnswer: '',
  });
  guard.attach(server as unknown as Parameters<ConnectionGuard['attach']>[0]);
  server.on('session', (session) => holdSessionToHeadDeadline(session, opts.limits));
  server.on('request', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    if (req.httpVersionMajor === 2) watchH2Body(req as Http2ServerRequest, res as Http2ServerResponse, opts.limits.bodyStallMs, h2StallAnswer);
    opts.proxy.handleRequest(req, res);
  });
  server.on('upgrade', guard.guardUpgrades(opts.proxy.handleUpgrade));
  server.on('clientError', answerClientError);
  server.on('tlsClientError', () => {});
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  const port = await listenOn(server, opts.host, opts.port);
  return {
    port,
    close() {
      server.close();
      guard.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** http2's HTTP/1.1 fallback reads its deadlines from the server object (60 s head, 5 min whole
 * request), never from the options: set the listener's own before it listens. */
function holdHttp1Fallback(server: Http2SecureServer, limits: ListenerLimits): void {
  const timeouts = httpServerTimeouts(limits);
  Object.assign(server, {
    headersTimeout: timeouts.headersTimeout,
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: timeouts.keepAliveTimeout,
    connectionsCheckingInterval: timeouts.connectionsCheckingInterval,
  });
}

/** Node's answers to an HTTP/1.1 request it cannot parse (its own when no listener is set). */
const CLIENT_ERROR_STATUS: Record<string, number> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 };

/** An HTTP/1.1 request the parser refused (oversized head, obs-fold, smuggling, a late head):
 * Node's answer, then a graceful close. Node's own handler destroys the socket at once, and a
 * socket closed with the client's bytes unread is reset, which loses the answer; here what the
 * client still sends is read and dropped for up to a second after the answer. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // The parser reports again for each chunk that still arrives: the first report is answered.
  if (answered.has(socket)) return;
  answered.add(socket);
  const http1 = socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null };
  if (!socket.writable || err.code === 'ECONNRESET' || http1._httpMessage?.headersSent) return void socket.destroy();
  const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? 400;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.removeAllListeners('data'); // the parser's: what follows is dropped unparsed
  socket.resume();
  setTimeout(() => socket.destroy(), 1_000).unref();
}
const answered = new WeakSet<Duplex>();

function h2StallAnswer(stalledMs: number): { status: number; headers: Record<string, string>; body: string } {
  const err = new DockfleetError('body_stalled', `the request body stopped arriving (no byte for ${Math.round(stalledMs / 1000)} s)`);
  return { status: err.status, headers: { 'content-type': 'application/json', 'x-dockfleet-error': err.code }, body: JSON.stringify(err.toJSON()) };
}

/** One TLS context per certificate (not per server name: a client inventing names must not make
 * the edge build a context for each), remade when the source's certificate for a name changes. */
class SecureContexts {
  readonly #source: EdgeCertificateSource;
  /** By the pair object the source returns (the book hands out the same object per certificate). */
  readonly #byPair = new WeakMap<object, SecureContext>();
  /** By the certificate's text, for a source that makes a new object each time. */
  readonly #byCert = new Map<string, SecureContext>();

  constructor(source: EdgeCertificateSource) {
    this.#source = source;
  }

  forName(name: string): SecureContext {
    const pair = this.#source(name);
    const known = this.#byPair.get(pair) ?? this.#byCert.get(pair.cert);
    if (known) return known;
    const context = tls.createSecureContext({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2', ...SERVER_CIPHER_PREFERENCE });
    if (this.#byCert.size >= 1024) this.#byCert.clear();
    this.#byCert.set(pair.cert, context);
    this.#byPair.set(pair, context);
    return context;
  }
}
