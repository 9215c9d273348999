/**
 * Holds one TLS listener to its ListenerLimits: refuses a connection over its address's cap at
 * accept (before any TLS work), runs a bounded number of TLS handshakes at once (the rest wait
 * their turn), destroys one whose handshake has not finished in time, watches
 * request bodies for stalls, and counts agent-gateway upgrades in their own budget. The head and
 * keep-alive deadlines are Node's own (httpServerTimeouts). Any listener the hub opens is
 * attached the same way.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../lib/logger.ts';
import { AddressCap, connectionKey } from './address-cap.ts';
import { BodyStallWatch, type StallAnswer } from './body-stall-watch.ts';
import { HandshakeAdmission } from './handshake-admission.ts';
import type { ListenerLimits } from './listener-limits.ts';

export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ConnectionGuardOptions {
  limits: ListenerLimits;
  log: Logger;
  /** The raw HTTP/1.1 answer for a cut body. */
  stallAnswer: StallAnswer;
  /** The raw HTTP/1.1 answer for an agent upgrade over its address's agent-link budget. */
  agentLinksFullAnswer: string;
  isAgentUpgrade(req: IncomingMessage): boolean;
}

/** An HTTPS server: a TLS server that also emits HTTP's request and upgrade events. */
type HttpsLikeServer = TlsServer & Pick<HttpServer, 'on' | 'prependListener'>;

export class ConnectionGuard {
  readonly #opts: ConnectionGuardOptions;
  readonly #cap: AddressCap;
  readonly #stalls: BodyStallWatch;
  readonly #admission: HandshakeAdmission;
  #queueFullWarned = false;
  /** Accepted connections whose TLS has not finished (their deadline, and the socket admission
   * knows them by), by connection key. */
  readonly #handshakes = new Map<string, { timer: NodeJS.Timeout; socket: Socket }>();

  constructor(opts: ConnectionGuardOptions) {
    this.#opts = opts;
    this.#cap = new AddressCap(opts.limits, (address) => opts.log.warn({ address, perAddress: opts.limits.perAddress }, 'connection cap reached for a client address; refusing more'));
    this.#stalls = new BodyStallWatch(opts.limits.bodyStallMs, opts.stallAnswer);
    // A connection may wait most of its deadline for a slot: a dialer waiting quietly costs
    // less than one that was turned away and dials again.
    const ms = opts.limits.handshakeMs;
    this.#admission = new HandshakeAdmission({ slots: opts.limits.handshakeSlots, queue: opts.limits.handshakeQueue, maxWaitMs: Math.floor(ms * 0.7), slotMs: Math.min(2_000, Math.floor(ms / 2)) });
  }

  /** Handshakes running and waiting, and how many were turned away (for tests and figures). */
  get admission(): HandshakeAdmission['counts'] {
    return this.#admission.counts;
  }

  /** Call once, right after the server is created and before it listens. */
  attach(server: HttpsLikeServer): void {
    // The TLS server wraps each accepted socket in its 'connection' listener; ours runs first
    // and hands on only the sockets it admits.
    const wrapTls = server.listeners('connection') as Array<(socket: Socket) => void>;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      if (!this.#admit(socket)) return;
      const start = (): void => {
        if (socket.destroyed) return;
        for (const listener of wrapTls) listener.call(server, socket);
      };
      // A slot is taken once the client has said something (its hello waits in the socket's
      // buffer, where TLS finds it): a connection that stays silent costs no slot, only its
      // deadline.
      socket.once('readable', () => {
        if (socket.destroyed || socket.readableLength === 0 || this.#admission.admit(socket, start)) return;
        if (!this.#queueFullWarned) this.#opts.log.warn({ queue: this.#opts.limits.handshakeQueue }, 'TLS handshake queue full; closing new connections as they speak');
        this.#queueFullWarned = true;
        socket.destroy();
      });
    });
    server.on('secureConnection', (socket: TLSSocket) => this.#handshakeDone(socket));
    // HTTP/2 streams share one socket: a listener that speaks HTTP/2 watches them per stream.
    server.prependListener('request', (req, res) => {
      if (req.httpVersionMajor !== 2) this.#stalls.watch(req, res);
    });
  }

  /** Wraps the hub's upgrade listener: agent-gateway upgrades move to the agent-link budget. */
  guardUpgrades(inner: UpgradeListener): UpgradeListener {
    return (req, socket, head) => {
      if (this.#opts.isAgentUpgrade(req) && !this.#cap.moveToAgentLinks(req.socket)) {
        this.#opts.log.warn({ address: req.socket.remoteAddress, agentLinksPerAddress: this.#opts.limits.agentLinksPerAddress }, 'agent-link cap reached for a client address');
        return void socket.end(this.#opts.agentLinksFullAnswer);
      }
      inner(req, socket, head);
    };
  }

  close(): void {
    this.#stalls.close();
    for (const { timer } of this.#handshakes.values()) clearTimeout(timer);
    this.#handshakes.clear();
  }

  #admit(socket: Socket): boolean {
    socket.on('error', () => {});
    if (!this.#cap.admit(socket)) {
      socket.destroy();
      return false;
    }
    const key = connectionKey(socket)!;
    const timer = setTimeout(() => socket.destroy(), this.#opts.limits.handshakeMs).unref();
    const pending = { timer, socket };
    this.#handshakes.set(key, pending);
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.#handshakes.get(key) === pending) this.#handshakes.delete(key);
    });
    return true;
  }

  #handshakeDone(socket: TLSSocket): void {
    const key = connectionKey(socket);
    if (key === null) return;
    const pending = this.#handshakes.get(key);
    if (pending === undefined) return;
    clearTimeout(pending.timer);
    this.#handshakes.delete(key);
    this.#admission.done(pending.socket);
  }
}
