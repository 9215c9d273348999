/**
 * One client request on its way to an app, as the forwarders see it, and what they share: how
 * the client's body and trailers are passed on with backpressure, what counts as a body, and how
 * a failure before the app answered becomes the page the client gets.
 */
import type { Writable } from 'node:stream';
import { passableTrailers, type EdgeRequest, type EdgeResponse, type HeaderMap } from '../edge-headers.ts';
import { routeDownPage, sendEdgePage } from '../edge-pages.ts';
import type { BackendTarget } from './backend-target.ts';
import { DialRefused } from './dial.ts';

export interface Exchange {
  req: EdgeRequest;
  res: EdgeResponse;
  target: BackendTarget;
  /** Origin-form request target. */
  path: string;
  /** Toward the app, HTTP/1.1 form (edge-headers.ts). */
  headers: HeaderMap;
  /** How long the request or its answer may stop flowing. */
  idleMs: number;
}

/** No request body can follow the head (so the request may be sent again on a fresh connection). */
export function hasNoBody(req: EdgeRequest): boolean {
  if (req.httpVersionMajor === 2) return (req as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === true;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/** Methods a client may have sent twice anyway: sent again when a kept connection turned out dead. */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export class IdleTimeout extends Error {
  constructor() {
    super('idle');
  }
}

/** Pipes the client's body to `upstream` with backpressure; its trailers go with the end when `sendTrailers` is given. */
export function passBody(req: EdgeRequest, upstream: Writable, sendTrailers: ((t: HeaderMap) => void) | null): void {
  req.pipe(upstream, { end: false });
  req.once('end', () => {
    const trailers = passableTrailers(req.trailers);
    if (trailers && sendTrailers) sendTrailers(trailers);
    upstream.end();
  });
}

/** The page for a failure before the app's answer began. */
export function sendFailurePage(x: Exchange, err: unknown): void {
  if (err instanceof DialRefused) return sendEdgePage(x.res, err.page);
  const { route, containerName, node } = x.target;
  if (err instanceof IdleTimeout) {
    return sendEdgePage(x.res, routeDownPage(route, 504, `The app (container ${containerName} on node ${node}) did not answer within ${Math.round(x.idleMs / 1000)} s.`));
  }
  sendEdgePage(x.res, routeDownPage(route, 502, `The connection to the app (container ${containerName} on node ${node}) was lost.`));
}
