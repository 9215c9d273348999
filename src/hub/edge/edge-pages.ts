/**
 * The edge's own answers: a small HTML page that names the host or route and says why, never a
 * bare 404 for a route that exists. Everything interpolated is escaped.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export interface EdgePage {
  status: 404 | 400 | 502 | 503 | 504;
  title: string;
  detail: string;
}

const REASONS: Record<EdgePage['status'], string> = {
  400: 'Bad Request', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function edgePageHtml(page: EdgePage): string {
  return `<!doctype html>\n<html><head><meta charset="utf-8"><title>${page.status} ${escapeHtml(page.title)}</title></head>\n`
    + `<body><h1>${escapeHtml(page.title)}</h1>\n<p>${escapeHtml(page.detail)}</p>\n<p><small>dockfleet edge</small></p></body></html>\n`;
}

export function unknownHostPage(host: string): EdgePage {
  return { status: 404, title: 'No route for this host', detail: `No container on any node publishes the host "${host || '(none)'}".` };
}

export function routeDownPage(route: string, status: 502 | 503 | 504, reason: string): EdgePage {
  return { status, title: `${route} is unavailable`, detail: reason };
}

export function sendEdgePage(res: ServerResponse, page: EdgePage): void {
  if (res.headersSent) return void res.destroy();
  const body = edgePageHtml(page);
  res.writeHead(page.status, {
    'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store',
  });
  res.end(body);
}

/** The same page on a raw socket (an upgrade request that cannot be served), then close. */
export function writeEdgePage(socket: Duplex, page: EdgePage): void {
  const body = edgePageHtml(page);
  socket.end(`HTTP/1.1 ${page.status} ${REASONS[page.status]}\r\ncontent-type: text/html; charset=utf-8\r\n`
    + `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`);
}
