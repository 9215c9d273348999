/**
 * Headers across the edge, for HTTP/1.1 and HTTP/2 clients alike (Node's compat API gives both
 * the same `headers` object; an HTTP/2 one also holds the pseudo-headers). Toward the app: the
 * client's own minus hop-by-hop, pseudo and internal ones (`x-dockfleet-*`, so a client can
 * never send the user header itself), minus any `X-Forwarded-*`, `Forwarded` or `X-Real-IP` a
 * client sent (the edge's word replaces them), minus the edge's own session cookie, plus the
 * edge's X-Forwarded-For, -Proto and -Host and the signed-in user. Toward the client: the app's
 * minus hop-by-hop ones, which HTTP/2 forbids and HTTP/1.1 sets per connection.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { clientRequestHeaders, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import { EDGE_SESSION_COOKIE, EDGE_USER_HEADER } from './edge-access-gate.ts';

export type EdgeRequest = IncomingMessage | Http2ServerRequest;
export type EdgeResponse = ServerResponse | Http2ServerResponse;
export type HeaderMap = Record<string, string | string[]>;

/** Dropped toward the app: the edge sets the forwarding ones itself, and answered `Expect` already. */
const CLIENT_ONLY = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'expect']);

export function isHttp2Response(res: EdgeResponse): res is Http2ServerResponse {
  return 'stream' in res;
}

/** What the client named: `:authority` (HTTP/2) or `Host` (HTTP/1.1), as sent. */
export function requestAuthority(req: EdgeRequest): string {
  const value = req.headers[':authority'] ?? req.headers.host;
  return typeof value === 'string' ? value : '';
}

/** The host a request names, lowercase, without port or trailing dot; '' when absent. */
export function requestHost(req: EdgeRequest): string {
  const raw = requestAuthority(req).toLowerCase().trim();
  const bare = raw.startsWith('[') ? raw.slice(0, raw.indexOf(']') + 1) : raw.replace(/:\d*$/, '');
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

/** The request target as an origin-form path (an absolute-form URL is reduced to its path). */
export function requestPath(req: EdgeRequest): string {
  const url = req.url ?? '/';
  if (url.startsWith('/') || url === '*') return url;
  try {
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  } catch {
    return '/';
  }
}

export function clientAddress(req: EdgeRequest): string {
  const address = req.socket?.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** `https` on the TLS edge port; `http` on a plain one. */
export function requestProto(req: EdgeRequest): 'https' | 'http' {
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http';
}

/** The Cookie header without the edge's own session cookie; null when nothing is left. */
export function withoutEdgeCookie(cookie: string | string[] | undefined): string | null {
  if (cookie === undefined) return null;
  const kept = (Array.isArray(cookie) ? cookie : [cookie])
    .flatMap((line) => line.split(';'))
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '' && pair.slice(0, pair.includes('=') ? pair.indexOf('=') : pair.length).trim() !== EDGE_SESSION_COOKIE);
  return kept.length === 0 ? null : kept.join('; ');
}

/** The headers the app receives (HTTP/1.1 form: `host`, no pseudo-headers); `user` from the access gate. */
export function edgeRequestHeaders(req: EdgeRequest, user: string | null): HeaderMap {
  const authority = requestAuthority(req);
  const headers = clientRequestHeaders(req.headers, CLIENT_ONLY);
  const cookie = withoutEdgeCookie(headers.cookie);
  if (cookie === null) delete headers.cookie;
  else headers.cookie = cookie;
  headers.host = authority;
  headers['x-forwarded-for'] = clientAddress(req);
  headers['x-forwarded-proto'] = requestProto(req);
  headers['x-forwarded-host'] = authority;
  if (user !== null) headers[EDGE_USER_HEADER] = user;
  return headers;
}

/** An upgrade (WebSocket) request keeps its Connection/Upgrade pair; everything else as above. */
export function edgeUpgradeHeaders(req: IncomingMessage, user: string | null): HeaderMap {
  return { ...edgeRequestHeaders(req, user), connection: 'Upgrade', upgrade: String(req.headers.upgrade ?? '') };
}

/** Headers (or trailers) as the client may get them, HTTP/1.1 or HTTP/2: the edge's own answers (the access gate's included) use these. */
export function edgeResponseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): HeaderMap {
  return forwardableHeaders(headers);
}

/** An app's response head toward the client: as above, and the edge's own session cookie is the
 * edge's to set — an app may not overwrite or clear it (it could sign its user out). */
export function appResponseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): HeaderMap {
  const kept = forwardableHeaders(headers);
  const cookies = kept['set-cookie'];
  if (cookies === undefined) return kept;
  const own = (line: string): boolean => line.trimStart().toLowerCase().startsWith(`${EDGE_SESSION_COOKIE}=`);
  const lines = (Array.isArray(cookies) ? cookies : [cookies]).filter((line) => !own(line));
  if (lines.length === 0) delete kept['set-cookie'];
  else kept['set-cookie'] = lines;
  return kept;
}

/** Trailers worth passing on (forwardable and not empty); null when there are none. */
export function passableTrailers(trailers: Record<string, string | string[] | undefined> | undefined): HeaderMap | null {
  if (!trailers) return null;
  const kept = forwardableHeaders(trailers);
  return Object.keys(kept).length === 0 ? null : kept;
}

/** Writes a response head on either kind of response (HTTP/2 has no status message). */
export function writeResponseHead(res: EdgeResponse, status: number, message: string | undefined, headers: OutgoingHttpHeaders): void {
  if (isHttp2Response(res)) res.writeHead(status, headers);
  else if (message) res.writeHead(status, message, headers);
  else res.writeHead(status, headers);
}

/** Ends a response that cannot be finished (the app went away mid-answer): the client sees it cut, never complete. */
export function abortResponse(res: EdgeResponse): void {
  if (isHttp2Response(res)) {
    if (!res.stream.destroyed) res.stream.close(0x2 /* INTERNAL_ERROR */);
  } else {
    res.destroy();
  }
}

/** An HTTP/1.1 request head, for the raw bytes of an upgrade. */
export function http1RequestHead(method: string, url: string, headers: HeaderMap): string {
  const lines = [`${method} ${url} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      // Parsed heads never hold these; a value from elsewhere (the gate's user) must not split the head.
      if (/[\r\n\0]/.test(v) || /[^!#$%&'*+.^_`|~0-9a-z-]/i.test(name)) throw new Error(`header ${JSON.stringify(name)} cannot be written`);
      lines.push(`${name}: ${v}`);
    }
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}
