/**
 * The edge's request and upgrade handlers, for HTTP/1.1 and HTTP/2 clients alike: find the route
 * for the host and path, ask the access gate, then pass the request to the app on the route's
 * node by the route's protocol — `http` and `https` over pooled HTTP/1.1 connections, `h2c` over
 * one HTTP/2 session per target (upstream/). Every connection to an app is a dial stream on the
 * node's agent link: the agent connects to the container on its own host, so nothing is
 * published there. Bodies flow both ways with backpressure at every hop, so memory stays
 * bounded whatever the size; there is no total deadline, only the route's idle one (default
 * 60 s; upgraded connections such as WebSockets an hour, or the route's if longer). Upgrades
 * get a connection of their own and the raw bytes both ways.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import tls from 'node:tls';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import type { IngressProtocol } from '../../protocol/ingress.ts';
import { PUBLIC_ONLY_GATE, type EdgeAccessGate, type EdgeAdmission } from './edge-access-gate.ts';
import { edgeRequestHeaders, edgeUpgradeHeaders, http1RequestHead, requestHost, requestPath, type EdgeRequest, type EdgeResponse } from './edge-headers.ts';
import { badRequestPage, routeDownPage, sendEdgeAnswer, sendEdgePage, unknownHostPage, writeEdgeAnswer, writeEdgePage, type EdgePage } from './edge-pages.ts';
import { POOL_DEFAULTS, type BackendTarget, type PoolLimits } from './upstream/backend-target.ts';
import { lingerOnEarlyClose } from './lingering-close.ts';
import { DialAgent } from './upstream/dial-agent.ts';
import { DialRefused, EDGE_STREAMS_PER_LINK, dialContainer, notRunningPage, offlinePage, type LinkSource } from './upstream/dial.ts';
import { forwardH2c } from './upstream/forward-h2c.ts';
import { forwardHttp1 } from './upstream/forward-http1.ts';
import { H2cSessions } from './upstream/h2c-sessions.ts';

/** What the edge needs of a route (route-table.ts's RouteTarget, structurally). */
export interface EdgeTarget {
  node: string;
  containerId: string;
  containerName: string;
  port: number;
  protocol: IngressProtocol;
  access: string;
  /** The route's `.idle-timeout` in seconds; null for the edge's default. */
  idleTimeout: number | null;
  running: boolean;
  nodeOnline: boolean;
}
export interface EdgeRouteLookup {
  match(host: string, path: string): { host: string; path: string; target: EdgeTarget } | null;
}

export interface EdgeProxyOptions {
  routes: EdgeRouteLookup;
  registry: LinkSource;
  log: Logger;
  /** Who may pass to a route that is not `public` (default: only public routes pass). */
  access?: EdgeAccessGate;
  /** Idle time allowed on a request or its answer when the route sets none (default 60 s). */
  idleMs?: number;
  /** Idle time allowed on an upgraded (WebSocket) connection (default one hour; a route's longer idle time wins). */
  upgradeIdleMs?: number;
  pool?: Partial<PoolLimits>;
  /** Edge connections one node's link may hold at once (default EDGE_STREAMS_PER_LINK; the rest is the node's management room). */
  maxStreamsPerLink?: number;
}

export const EDGE_IDLE_MS = 60_000;
export const EDGE_UPGRADE_IDLE_MS = 3_600_000;

interface Matched {
  target: BackendTarget;
  access: string;
  idleMs: number;
  host: string;
  path: string;
}

export class EdgeProxy {
  readonly #opts: EdgeProxyOptions;
  readonly #gate: EdgeAccessGate;
  readonly #links: LinkSource;
  /** Pooled HTTP/1.1 connections to `http` and `https` apps. */
  readonly http1: DialAgent;
  /** One HTTP/2 session per `h2c` app. */
  readonly h2c: H2cSessions;

  constructor(opts: EdgeProxyOptions) {
    this.#opts = opts;
    this.#gate = opts.access ?? PUBLIC_ONLY_GATE;
    const limits = { ...POOL_DEFAULTS, ...opts.pool };
    this.#links = { requireLink: (node) => opts.registry.requireLink(node), maxStreamsPerLink: opts.maxStreamsPerLink ?? EDGE_STREAMS_PER_LINK, openStreams: new WeakMap() };
    this.http1 = new DialAgent(this.#links, limits);
    this.h2c = new H2cSessions(this.#links, limits);
  }

  readonly handleRequest = (req: EdgeRequest, res: EdgeResponse): void => {
    if (req.httpVersionMajor === 1) lingerOnEarlyClose(req as IncomingMessage);
    void this.#request(req, res).catch((err: unknown) => {
      this.#opts.log.warn({ err }, 'edge request failed');
      sendEdgePage(res, routeDownPage(requestHost(req), 502, 'The edge could not reach the app.'));
    });
  };

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.#upgrade(req, socket, head).catch((err: unknown) => {
      this.#opts.log.warn({ err }, 'edge upgrade failed');
      socket.destroy();
    });
  };

  /** Drops every kept connection to apps (the hub is stopping). */
  close(): void {
    this.http1.destroy();
    this.h2c.close();
  }

  async #request(req: EdgeRequest, res: EdgeResponse): Promise<void> {
    if (req.method === 'CONNECT') return this.#refuse(req, res, badRequestPage('The edge does not serve CONNECT.'));
    const found = this.#match(req);
    if ('page' in found) return this.#refuse(req, res, found.page);
    const admission = await this.#admit(req, found);
    if (!admission.pass) {
      req.resume();
      return sendEdgeAnswer(res, admission);
    }
    const exchange = { req, res, target: found.target, path: requestPath(req), headers: edgeRequestHeaders(req, admission.user), idleMs: found.idleMs };
    if (found.target.protocol === 'h2c') forwardH2c(exchange, this.h2c);
    else forwardHttp1(exchange, this.http1);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const found = this.#match(req);
    if ('page' in found) return writeEdgePage(socket, found.page);
    const admission = await this.#admit(req, found);
    if (!admission.pass) return writeEdgeAnswer(socket, admission);
    let headText: string;
    try {
      headText = http1RequestHead(req.method ?? 'GET', requestPath(req), edgeUpgradeHeaders(req, admission.user));
    } catch {
      return writeEdgePage(socket, badRequestPage('The upgrade request cannot be passed on.'));
    }
    let stream;
    try {
      stream = await dialContainer(this.#links, found.target);
    } catch (err) {
      if (err instanceof DialRefused) return writeEdgePage(socket, err.page);
      throw err;
    }
    if (socket.destroyed) return cancelUnlessDone(stream);
    // An upgrade gets a connection of its own (never a pooled one): after the app's 101 it is the client's.
    const app: Duplex = found.target.protocol === 'https' ? tls.connect({ socket: stream, servername: found.target.serverName, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false }) : stream;
    // The app answers the upgrade itself (101 or not); from here on bytes pass as they are.
    app.write(headText);
    if (head.length > 0) app.write(head);
    const idleMs = Math.max(this.#opts.upgradeIdleMs ?? EDGE_UPGRADE_IDLE_MS, found.idleMs);
    const setIdle = (app as Duplex & { setTimeout(ms: number, cb: () => void): unknown }).setTimeout.bind(app);
    setIdle(idleMs, () => {
      socket.destroy();
      app.destroy();
    });
    pipeline(socket, app, () => {
      if (app === stream) cancelUnlessDone(stream);
      else app.destroy();
    });
    pipeline(app, socket, () => socket.destroy());
  }

  #match(req: EdgeRequest): Matched | { page: EdgePage } {
    const host = requestHost(req);
    const path = requestPath(req);
    const match = this.#opts.routes.match(host, path.startsWith('/') ? path.split('?')[0]! : '/');
    if (!match) return { page: unknownHostPage(host) };
    const { target } = match;
    const backend: BackendTarget = {
      node: target.node,
      containerId: target.containerId,
      containerName: target.containerName,
      port: target.port,
      protocol: target.protocol,
      serverName: match.host,
      route: `${match.host}${match.path === '/' ? '' : match.path}`,
    };
    if (!target.nodeOnline || !target.running) {
      // Whatever was kept for it is dead or soon will be.
      this.http1.forget(target.containerId);
      this.h2c.forget(target.containerId);
      return { page: target.nodeOnline ? notRunningPage(backend) : offlinePage(backend) };
    }
    const idleMs = target.idleTimeout === null ? (this.#opts.idleMs ?? EDGE_IDLE_MS) : target.idleTimeout * 1000;
    return { target: backend, access: target.access, idleMs, host: match.host, path: match.path };
  }

  async #admit(req: EdgeRequest, found: Matched): Promise<EdgeAdmission> {
    try {
      return await this.#gate.admit(req, { host: found.host, path: found.path, access: found.access, node: found.target.node });
    } catch (err) {
      this.#opts.log.warn({ err, route: found.target.route }, 'edge access check failed');
      const page = routeDownPage(found.target.route, 502, 'The edge could not check access to this route.');
      return { pass: false, status: page.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: `${page.detail}\n` };
    }
  }

  #refuse(req: EdgeRequest, res: EdgeResponse, page: EdgePage): void {
    req.resume();
    sendEdgePage(res, page);
  }
}
