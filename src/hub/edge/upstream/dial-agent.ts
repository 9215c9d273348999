/**
 * The pool of HTTP/1.1 connections to apps (`http` and `https` routes): Node's keep-alive
 * `http.Agent`, with connections that are dial streams through the agent link instead of TCP
 * sockets. A request takes an idle connection to the same target if there is one (no dial, no
 * engine inspect, no TCP connect), else dials a new one; a finished one goes back idle, up to
 * the limits (per target, in total) and for at most `idleMs`, or the app's `Keep-Alive: timeout`
 * if shorter. A connection the app or the agent closes leaves the pool as it closes.
 *
 * `https`: TLS to the container over the dial stream, SNI = the route's host. The container's
 * certificate is NOT verified: the hop runs from the agent to the container's own address on the
 * agent's host (the link to the agent is itself mutually authenticated TLS), and apps that
 * insist on TLS mostly carry self-signed certificates no edge could verify anyway.
 */
import http from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { BackendTarget, PoolLimits } from './backend-target.ts';
import { dialContainer, type LinkSource } from './dial.ts';

/** The options a pooled request carries for the agent (beside Node's own). */
export interface PooledRequestOptions extends http.RequestOptions {
  edgeKey: string;
  edgeTarget: BackendTarget;
}

function noop(this: unknown): unknown {
  return this;
}

/** A dial stream where Node's HTTP client and Agent expect a socket: the few socket-only calls they make do nothing. */
function asSocket(stream: ClientHttp2Stream): Duplex {
  Object.assign(stream, { setKeepAlive: noop, setNoDelay: noop, ref: noop, unref: noop });
  // The app (or the agent) closed its side: the connection cannot carry another request. Close
  // ours too, so the stream ends both ways without a reset and leaves the pool.
  stream.once('end', () => {
    if (!stream.writableEnded) stream.end();
  });
  return stream;
}

export class DialAgent extends http.Agent {
  readonly #links: LinkSource;
  readonly #limits: PoolLimits;
  /** Dials made (for tests and stats: a reused connection makes none). */
  dials = 0;

  constructor(links: LinkSource, limits: PoolLimits) {
    super({ keepAlive: true, maxFreeSockets: limits.maxIdlePerTarget, timeout: limits.idleMs, scheduling: 'lifo' });
    this.#links = links;
    this.#limits = limits;
  }

  override getName(options?: http.ClientRequestArgs): string {
    return (options as PooledRequestOptions | undefined)?.edgeKey ?? '';
  }

  override createConnection(options: http.ClientRequestArgs, done?: (err: Error | null, socket: Duplex) => void): undefined {
    const target = (options as PooledRequestOptions).edgeTarget;
    this.dials++;
    dialContainer(this.#links, target).then(
      (stream) => {
        if (target.protocol !== 'https') return done?.(null, asSocket(stream));
        const socket = tls.connect({
          socket: asSocket(stream),
          servername: target.serverName,
          ALPNProtocols: ['http/1.1'],
          // Not verified, on purpose: see the file's header.
          rejectUnauthorized: false,
        });
        done?.(null, socket);
      },
      (err: Error) => done?.(err, undefined as unknown as Duplex),
    );
    return undefined;
  }

  override keepSocketAlive(socket: Duplex): boolean {
    if (this.idleCount() >= this.#limits.maxIdleTotal) return false;
    return (http.Agent.prototype.keepSocketAlive as (this: http.Agent, s: Duplex) => boolean).call(this, socket);
  }

  /** Idle connections over all targets. */
  idleCount(): number {
    let n = 0;
    for (const list of Object.values(this.freeSockets)) n += list?.length ?? 0;
    return n;
  }

  /** Closes the idle connections to one container (it stopped, or its node went away). */
  forget(containerId: string): void {
    for (const [key, list] of Object.entries(this.freeSockets)) {
      if (key.split('|')[1] !== containerId) continue;
      for (const socket of [...(list ?? [])]) socket.destroy();
    }
  }
}
