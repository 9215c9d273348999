/**
 * One connection to a container, through its node's agent: an HTTP/2 stream on the agent link
 * (EDGE_DIAL_PATH); once the agent answers 200 it has connected to the container's own address
 * on its host, and the stream carries the raw TCP bytes both ways. A refusal becomes the page
 * the client gets (503 when the container is not running, 502 when it refused the port or the
 * node is gone), carried by DialRefused.
 */
import type { ClientHttp2Stream } from 'node:http2';
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

/** Opens a connection to the target; rejects with DialRefused saying why not. */
export function dialContainer(links: LinkSource, target: DialTarget): Promise<ClientHttp2Stream> {
  let stream: ClientHttp2Stream;
  try {
    const link = links.requireLink(target.node);
    const openDials = links.openStreams ?? new WeakMap<object, number>();
    const open = openDials.get(link) ?? 0;
    const cap = links.maxStreamsPerLink ?? EDGE_STREAMS_PER_LINK;
    if (open >= cap) {
      return Promise.reject(new DialRefused(routeDownPage(target.route, 503,
        `Node ${target.node} holds as many edge connections as it may (${cap}); try again later.`)));
    }
    stream = link.openStream({ ':method': 'POST', ':path': edgeDialPath(target.containerId, target.port) }, { endStream: false });
    openDials.set(link, open + 1);
    stream.once('close', () => openDials.set(link, (openDials.get(link) ?? 1) - 1));
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
      if (reason === 'port_not_published') return refuse(routeDownPage(target.route, 502, `Container ${target.containerName} on node ${target.node} does not publish port ${target.port} by its labels.`));
      refuse(routeDownPage(target.route, 502, `Container ${target.containerName} on node ${target.node} refused a connection on port ${target.port}.`));
    });
  });
}
