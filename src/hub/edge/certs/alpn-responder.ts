/**
 * The TLS-ALPN-01 responder (RFC 8737) on the edge port: takes the connections whose
 * ClientHello offers `acme-tls/1`, presents the challenge certificate the ChallengeBoard holds
 * for the server name (or, when there is none, the name's normal certificate, so the validator
 * sees a plain mismatch), negotiates `acme-tls/1`, and closes the connection once the
 * handshake is done: no request is ever read on it. Connections that do not offer
 * `acme-tls/1` never come here, so nobody else ever sees a challenge certificate.
 */
import type { Socket } from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import type { ChallengeBoard } from './challenge-board.ts';

export const ACME_TLS_ALPN = 'acme-tls/1';

export interface AlpnResponderOptions {
  board: ChallengeBoard;
  /** The normal context for a server name (the edge's own choice). */
  normalContext(serverName: string): SecureContext;
  /** Any certificate for a client that sends no server name (the validator always sends one). */
  fallback: { cert: string; key: string };
  handshakeMs: number;
}

export class AlpnResponder {
  readonly #server: tls.Server;

  constructor(opts: AlpnResponderOptions) {
    this.#server = tls.createServer({
      ...opts.fallback,
      minVersion: 'TLSv1.2',
      ALPNProtocols: [ACME_TLS_ALPN],
      handshakeTimeout: opts.handshakeMs,
      SNICallback: (name, done) => {
        try {
          const challenge = opts.board.alpnCertificate(name.toLowerCase());
          done(null, challenge ? tls.createSecureContext({ ...challenge, minVersion: 'TLSv1.2' }) : opts.normalContext(name.toLowerCase()));
        } catch (err) {
          done(err as Error);
        }
      },
    });
    this.#server.on('secureConnection', (socket: TLSSocket) => {
      socket.on('error', () => {});
      socket.end();
      // A validator that does not read our close_notify cannot hold the socket.
      setTimeout(() => socket.destroy(), 1_000).unref();
    });
    this.#server.on('tlsClientError', (_err, socket) => socket.destroy());
  }

  /** Takes an accepted socket whose ClientHello (still unread on it) offers acme-tls/1. */
  take(socket: Socket): void {
    this.#server.emit('connection', socket);
  }
}
