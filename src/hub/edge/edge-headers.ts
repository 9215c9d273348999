/**
 * Headers across the edge. Toward the app: the client's own minus hop-by-hop and internal ones,
 * minus any `X-Forwarded-*` or `Forwarded` a client sent (the edge's word replaces them), plus
 * the edge's X-Forwarded-For, -Proto and -Host. Toward the client: the app's minus hop-by-hop.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { clientRequestHeaders, forwardableHeaders } from '../../protocol/docker-tunnel.ts';

const CLIENT_FORWARDING = new Set(['forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip']);

/** The Host a request names, lowercase, without port or trailing dot; '' when absent. */
export function requestHost(req: IncomingMessage): string {
  const raw = (req.headers.host ?? '').toLowerCase().trim();
  const bare = raw.startsWith('[') ? raw.slice(0, raw.indexOf(']') + 1) : raw.replace(/:\d*$/, '');
  return bare.endsWith('.') ? bare.slice(0, -1) : bare;
}

export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export function edgeRequestHeaders(req: IncomingMessage, proto: 'https' | 'http'): Record<string, string | string[]> {
  const host = req.headers.host ?? '';
  return {
    ...clientRequestHeaders(req.headers, CLIENT_FORWARDING),
    host,
    'x-forwarded-for': clientAddress(req),
    'x-forwarded-proto': proto,
    'x-forwarded-host': host,
  };
}

/** An upgrade (WebSocket) request keeps its Connection/Upgrade pair; everything else as above. */
export function edgeUpgradeHeaders(req: IncomingMessage, proto: 'https' | 'http'): Record<string, string | string[]> {
  return { ...edgeRequestHeaders(req, proto), connection: 'Upgrade', upgrade: String(req.headers.upgrade ?? '') };
}

export function edgeResponseHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  return forwardableHeaders(headers);
}

/** An HTTP/1.1 request head, for the raw bytes of an upgrade. */
export function http1RequestHead(method: string, url: string, headers: Record<string, string | string[]>): string {
  const lines = [`${method} ${url} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}
