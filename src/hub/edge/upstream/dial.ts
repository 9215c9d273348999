/**
 * One connection to a container, through its node's agent: an HTTP/2 stream on the agent link
 * (EDGE_DIAL_PATH); once the agent answers 200 it has connected to the container's own address
 * on its host, and the stream carries the raw TCP bytes both ways. A refusal becomes the page
 * the client gets (503 when the container is not running, 502 when it refused the port or the
 * node is gone), carried by DialRefused.
 */
import { constants, type ClientHttp2Stream } from 'node:http2';
import { EDGE_DIAL_REASON_HEADER, edgeDialPath } from '../../../protocol/edge-dial.ts';
import { cancelUnlessDone } from '../../../lib/h2-channel.ts';
import type { NodeRegistry } from '../../node-registry.ts';
import { routeDownPage, type EdgePage } from '../edge-pages.ts';

/** Where a connection goes: the container (on its node) and port, named for pages. */
export interface DialTarget {
  node: string;
  containerId: string;
  containerName: string;
  port: number;
  /** The route as pages name it (`host` or `host/path`). */
  route: string;
}

/**
 * Where dial streams are opened: the node registry's links; optionally how many edge streams one
 * link may hold, and the count of those open per link object (a reconnected node has a new link
 * and a fresh count). The edge proxy keeps one count for all its dials.
 */
export type LinkSource = Pick<NodeRegistry, 'requireLink'> & {
  readonly maxStreamsPerLink?: number;
  readonly openStreams?: WeakMap<object, number>;
};

/**
 * Dial streams one agent link may hold at once. The link allows 16,384 concurrent streams
 * (H2_SETTINGS); every edge connection holds one for its life (an idle WebSocket included),
 * so the edge leaves the rest to the node's own management calls (Docker API, logs, jobs):
 * a flood of idle connections to one app cannot lock its node out of the hub.
 */
export const EDGE_STREAMS_PER_LINK = 15_360;

export class DialRefused extends Error {
  readonly page: EdgePage;
  constructor(page: EdgePage) {
    super(page.detail);
    this.page = page;
  }
}

export function offlinePage(target: DialTarget, detail = `Node ${target.node} is offline.`): EdgePage {
  return routeDownPage(target.route, 502, detail);
}

export function notRunningPage(target: DialTarget): EdgePage {
  return routeDownPage(target.route, 503, `Container ${target.containerName} on node ${target.node} is not running.`);
}

/**
 * Makes the dial stream's destroy() safe for everyone who holds it as a socket (Node's HTTP
 * client destroys its socket when the app's side ends, even while the request body is still
 * being sent; TLS and stream.pipeline destroy on errors): an open stream is closed with CANCEL
 * instead (cancelUnlessDone), and Node destroys it itself once the RST_STREAM is out. Destroyed
 * at once, Node (20) drops the handle before that RST goes out and nghttp2 asks for the queued
 * body forever: the runaway sendBody's comment in h2-channel.ts tells of. A stream whose both
 * sides have ended is left to close when its last DATA is out (the agent reads what is left).
 */
function closeInsteadOfDestroy(stream: ClientHttp2Stream): void {
  const destroy = stream.destroy.bind(stream);
  // The error a caller destroyed it with (an idle timeout, say) is the one it errors with when Node destroys it.
  let reason: Error | undefined;
  stream.destroy = (err?: Error): ClientHttp2Stream => {
    reason ??= err;
    if (stream.closed || stream.destroyed || stream.session === undefined || stream.session.destroyed) return destroy(err ?? reason);
    cancelUnlessDone(stream);
    return stream;
  };
}

export class DialReset extends Error {
  constructor(code: number) {
    super(`the connection to the app was reset (HTTP/2 error code ${code})`);
  }
}

/**
 * A reset is not an end. Node ends a stream's readable side when a RST_STREAM arrives, and to
 * whoever reads it as a socket that is the app's FIN: an answer whose length is the connection's
 * (HTTP/1.0 style) would look whole when the app was reset, killed or stopped midway (the agent
 * cancels the stream then, container-dialer.ts). Such an end errors the stream instead.
 */
function resetIsNoEnd(stream: ClientHttp2Stream): void {
  const emit = stream.emit.bind(stream) as (event: string | symbol, ...args: unknown[]) => boolean;
  stream.emit = ((event: string | symbol, ...args: unknown[]): boolean => {
    const code = stream.rstCode;
    if (event === 'end' && code !== undefined && code !== constants.NGHTTP2_NO_ERROR) {
      stream.destroy(new DialReset(code));
      return false;
    }
    return emit(event, ...args);
  }) as typeof stream.emit;
}

/** Opens a connection to the target; rejects with DialRefused saying why not. */
export function dialContainer(links: LinkSource, target: DialTarget): Promise<ClientHttp2Stream> {
  let stream: ClientHttp2Stream;
  try {
    const link = links.requireLink(target.node);
    const openDials = links.openStreams ?? new WeakMap<object, number>();
    const open = openDials.get(link) ?? 0;
    const cap = links.maxStreamsPerLink ?? EDGE_STREAMS_PER_LINK;
    if (open >= cap) {
      return Promise.reject(new DialRefused(routeDownPage(target.route, 503, `Node ${target.node} holds as many edge connections as it may (${cap}); try again later.`)));
    }
    stream = link.openStream({ ':method': 'POST', ':path': edgeDialPath(target.containerId, target.port) }, { endStream: false });
    openDials.set(link, open + 1);
    stream.once('close', () => openDials.set(link, (openDials.get(link) ?? 1) - 1));
    closeInsteadOfDestroy(stream);
    resetIsNoEnd(stream);
  } catch {
    return Promise.reject(new DialRefused(offlinePage(target)));
  }
  // Whoever uses the connection listens for its errors; before, between and after, none may go
  // unheard (a link that dies errors every stream on it, refused or idle ones too).
  stream.on('error', () => {});
  return new Promise((resolve, reject) => {
    const refuse = (page: EdgePage): void => {
      cancelUnlessDone(stream);
      reject(new DialRefused(page));
    };
    const onError = (): void => refuse(offlinePage(target, `Node ${target.node} went away.`));
    const onClose = (): void => refuse(offlinePage(target, `Node ${target.node} closed the connection.`));
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('response', (headers) => {
      stream.off('error', onError);
      stream.off('close', onClose);
      if (Number(headers[':status']) === 200) return resolve(stream);
      const reason = String(headers[EDGE_DIAL_REASON_HEADER] ?? '');
      if (reason === 'not_running' || reason === 'no_container' || reason === 'no_address') return refuse(notRunningPage(target));
      if (reason === 'policy') return refuse(routeDownPage(target.route, 502, `The policy on node ${target.node} does not let the edge reach its containers (sections.ingress).`));
      if (reason === 'port_not_published')
        return refuse(routeDownPage(target.route, 502, `Container ${target.containerName} on node ${target.node} does not publish port ${target.port} by its labels.`));
      refuse(routeDownPage(target.route, 502, `Container ${target.containerName} on node ${target.node} refused a connection on port ${target.port}.`));
    });
  });
}
