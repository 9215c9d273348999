/**
 * The limits every hub listener holds a connection to: how long a TLS handshake, a request head
 * and a silent request body may take, how many connections one client address may hold, and how
 * many handshakes run at once.
 * Answers that are flowing or waiting (logs -f, events, exec, the agents' links) have no limit.
 */
import type { ServerOptions } from 'node:https';

export interface ListenerLimits {
  /** A TLS handshake must finish this long after the TCP connection was accepted. */
  readonly handshakeMs: number;
  /** A request head must arrive whole this long after the handshake, or after the previous
   * answer ended (an idle keep-alive connection is closed then). */
  readonly headMs: number;
  /** A request body that the hub is ready to read but that brings no byte this long is cut (408). */
  readonly bodyStallMs: number;
  /** Connections one client address may hold, agent links apart. */
  readonly perAddress: number;
  /** Agent links one client address may hold (a site's NAT carries all its hosts' links). */
  readonly agentLinksPerAddress: number;
  /** TLS handshakes run at once; more connections wait their turn (handshake-admission.ts). */
  readonly handshakeSlots: number;
  /** Connections that may wait for a handshake slot; past it they are closed at accept. */
  readonly handshakeQueue: number;
}

export const LISTENER_DEFAULTS: ListenerLimits = Object.freeze({
  handshakeMs: 10_000,
  headMs: 30_000,
  bodyStallMs: 30_000,
  perAddress: 256,
  agentLinksPerAddress: 4_096,
  handshakeSlots: 128,
  handshakeQueue: 16_384,
});

/** Node's own HTTP server timeouts that carry `headMs`: the head deadline (checked on a sweep
 * of all connections, a tenth of the deadline apart, at most 1 s) and the keep-alive idle time.
 * No whole-request deadline: uploads may take as long as they keep flowing. */
export function httpServerTimeouts(limits: ListenerLimits): Pick<ServerOptions, 'headersTimeout' | 'keepAliveTimeout' | 'requestTimeout' | 'connectionsCheckingInterval' | 'handshakeTimeout'> {
  return {
    headersTimeout: limits.headMs,
    keepAliveTimeout: limits.headMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headMs / 10))),
    // A backstop: TLS's own timer restarts on every byte; the connection guard's does not.
    handshakeTimeout: limits.handshakeMs,
  };
}
