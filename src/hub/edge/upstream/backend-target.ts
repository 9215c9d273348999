/**
 * What the upstream side needs of a matched route: where to dial, how to speak to the app
 * (`http`, `h2c` or `https`), the name to send as TLS SNI, and the pool key that connections to
 * it are kept under. The key holds the node, container ID, port and protocol, so a container
 * that is replaced (new ID) or moved never gets a connection made for another.
 */
import type { IngressProtocol } from '../../../protocol/ingress.ts';
import type { DialTarget } from './dial.ts';

export interface BackendTarget extends DialTarget {
  protocol: IngressProtocol;
  /** The route's host: SNI for `https`, `:authority` for new h2c sessions. */
  serverName: string;
}

export function backendKey(t: BackendTarget): string {
  return [t.node, t.containerId, t.port, t.protocol, t.protocol === 'https' ? t.serverName : ''].join('|');
}

/** Limits on connections kept for reuse; active connections are never capped here (each is a client's request). */
export interface PoolLimits {
  /** Idle HTTP/1.1 connections kept per target. */
  maxIdlePerTarget: number;
  /** Idle HTTP/1.1 connections kept over all targets. */
  maxIdleTotal: number;
  /** An idle connection (or an h2c session without streams) is closed after this long; sooner if the app's Keep-Alive says so. */
  idleMs: number;
}

export const POOL_DEFAULTS: PoolLimits = Object.freeze({ maxIdlePerTarget: 256, maxIdleTotal: 2048, idleMs: 30_000 });
