/**
 * The edge's request and upgrade handlers: find the route for Host and path, open a dial stream
 * to the agent of the route's node (it connects to the container on its own host), and speak
 * HTTP/1.1 to the container over that stream with Node's client, the stream standing in for the
 * socket. Bodies are piped both ways with backpressure (HTTP/2 flow control on the link, the
 * sockets' own at each end), so memory stays bounded whatever the size; there is no total
 * deadline, only an idle one per request. Upgrades (WebSocket) get the raw bytes both ways.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import { EDGE_DIAL_REASON_HEADER, edgeDialPath } from '../../protocol/edge-dial.ts';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { edgeRequestHeaders, edgeResponseHeaders, edgeUpgradeHeaders, http1RequestHead, requestHost } from './edge-headers.ts';
import { routeDownPage, sendEdgePage, unknownHostPage, writeEdgePage, type EdgePage } from './edge-pages.ts';

/** What the edge needs of a route (route-table.ts's RouteTarget, structurally). */
export interface EdgeTarget { node: string; containerId: string; containerName: string; port: number; running: boolean; nodeOnline: boolean }
export interface EdgeRouteLookup { match(host: string, path: string): { host: string; path: string; target: EdgeTarget } | null }

export interface EdgeProxyOptions {
  routes: EdgeRouteLookup;
  registry: Pick<NodeRegistry, 'requireLink'>;
  log: Logger;
  /** Idle time allowed on one request's connection to the app (default 60 s). */
  idleMs?: number;
  /** Idle time allowed on an upgraded (WebSocket) connection (default one hour). */
  upgradeIdleMs?: number;
}

export const EDGE_IDLE_MS = 60_000;
export const EDGE_UPGRADE_IDLE_MS = 3_600_000;

type Dialled = { ok: true; stream: ClientHttp2Stream } | { ok: false; page: EdgePage };

export class EdgeProxy {
  readonly #opts: EdgeProxyOptions;

  constructor(opts: EdgeProxyOptions) {
    this.#opts = opts;
  }

  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#request(req, res).catch((err: unknown) => {
      this.#opts.log.warn({ err }, 'edge request failed');
      sendEdgePage(res, routeDownPage(requestHost(req), 502, 'The edge could not reach the app.'));
    });
  };

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.#upgrade(req, socket, head).catch(() => socket.destroy());
  };

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const dialled = await this.#dial(req);
    if (!dialled.ok) {
      req.resume();
      return sendEdgePage(res, dialled.page);
    }
    const stream = dialled.stream;
    const upstream = http.request({
      method: req.method, path: req.url, headers: edgeRequestHeaders(req, 'https'),
      // No agent: each request has its own dial (an agent would ignore createConnection).
      createConnection: () => stream as unknown as import('node:net').Socket,
    });
    upstream.setTimeout(this.#opts.idleMs ?? EDGE_IDLE_MS, () => upstream.destroy(new Error('idle')));
    upstream.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, edgeResponseHeaders(answer.headers));
      pipeline(answer, res, () => cancelUnlessDone(stream));
    });
    upstream.once('error', (err) => {
      cancelUnlessDone(stream);
      const idle = err.message === 'idle';
      sendEdgePage(res, routeDownPage(requestHost(req), idle ? 504 : 502,
        idle ? 'The app did not answer in time.' : 'The connection to the app was lost.'));
    });
    res.once('close', () => { if (!res.writableFinished) { upstream.destroy(); cancelUnlessDone(stream); } });
    pipeline(req, upstream, () => {});
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const dialled = await this.#dial(req);
    if (!dialled.ok) return writeEdgePage(socket, dialled.page);
    const stream = dialled.stream;
    // The container answers the upgrade itself (101 or not); from here on bytes pass as they are.
    stream.write(http1RequestHead(req.method ?? 'GET', req.url ?? '/', edgeUpgradeHeaders(req, 'https')));
    if (head.length > 0) stream.write(head);
    const idleMs = this.#opts.upgradeIdleMs ?? EDGE_UPGRADE_IDLE_MS;
    stream.setTimeout(idleMs, () => { socket.destroy(); stream.close(); });
    pipeline(socket, stream, () => cancelUnlessDone(stream));
    pipeline(stream, socket, () => socket.destroy());
  }

  /** The route, its node's link, and the agent's connection to the container; or the page saying why not. */
  async #dial(req: IncomingMessage): Promise<Dialled> {
    const host = requestHost(req);
    const match = this.#opts.routes.match(host, new URL(req.url ?? '/', 'http://edge').pathname);
    if (!match) return { ok: false, page: unknownHostPage(host) };
    const { target } = match;
    const name = `${match.host}${match.path === '/' ? '' : match.path}`;
    if (!target.nodeOnline) return { ok: false, page: routeDownPage(name, 502, `Node ${target.node} is offline.`) };
    if (!target.running) return { ok: false, page: routeDownPage(name, 503, `Container ${target.containerName} on node ${target.node} is not running.`) };
    let stream: ClientHttp2Stream;
    try {
      stream = this.#opts.registry.requireLink(target.node).openStream(
        { ':method': 'POST', ':path': edgeDialPath(target.containerId, target.port) }, { endStream: false });
    } catch {
      return { ok: false, page: routeDownPage(name, 502, `Node ${target.node} is offline.`) };
    }
    return new Promise((resolve) => {
      stream.once('response', (headers) => {
        if (Number(headers[':status']) === 200) return resolve({ ok: true, stream });
        cancelUnlessDone(stream);
        const reason = String(headers[EDGE_DIAL_REASON_HEADER] ?? '');
        if (reason === 'not_running' || reason === 'no_container' || reason === 'no_address') {
          return resolve({ ok: false, page: routeDownPage(name, 503, `Container ${target.containerName} on node ${target.node} is not running.`) });
        }
        resolve({ ok: false, page: routeDownPage(name, 502, `Container ${target.containerName} on node ${target.node} refused a connection on port ${target.port}.`) });
      });
      stream.once('error', () => resolve({ ok: false, page: routeDownPage(name, 502, `Node ${target.node} went away.`) }));
      stream.once('close', () => resolve({ ok: false, page: routeDownPage(name, 502, `Node ${target.node} closed the connection.`) }));
    });
  }
}
