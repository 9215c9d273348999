/**
 * The edge's own answers: a small HTML page that names the host or route and says why, never a
 * bare 404 for a route that exists; and the access gate's answers (a redirect to sign-in, a
 * 403) sent as the gate made them. Each goes out on an HTTP/1.1 or HTTP/2 response, or as raw
 * bytes on the socket of an upgrade that cannot be served. Everything interpolated is escaped.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { abortResponse, edgeResponseHeaders, writeResponseHead, type EdgeResponse } from './edge-headers.ts';

export interface EdgePage {
  status: 404 | 400 | 502 | 503 | 504;
  title: string;
  detail: string;
}

/** An answer made whole elsewhere (the access gate's). */
export interface EdgeAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function edgePageHtml(page: EdgePage): string {
  return (
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${page.status} ${escapeHtml(page.title)}</title></head>\n` +
    `<body><h1>${escapeHtml(page.title)}</h1>\n<p>${escapeHtml(page.detail)}</p>\n<p><small>dockfleet edge</small></p></body></html>\n`
  );
}

export function unknownHostPage(host: string): EdgePage {
  return { status: 404, title: 'No route for this host', detail: `No container on any node publishes the host "${host || '(none)'}".` };
}

export function routeDownPage(route: string, status: 502 | 503 | 504, reason: string): EdgePage {
  return { status, title: `${route} is unavailable`, detail: reason };
}

export function badRequestPage(detail: string): EdgePage {
  return { status: 400, title: 'Bad request', detail };
}

function pageAnswer(page: EdgePage): EdgeAnswer {
  return { status: page.status, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }, body: edgePageHtml(page) };
}

/** Sends an answer on a response; one whose head is already out is cut instead (the client sees it incomplete). */
export function sendEdgeAnswer(res: EdgeResponse, answer: EdgeAnswer): void {
  if (res.headersSent) return abortResponse(res);
  if (res.destroyed) return;
  const headers = { ...edgeResponseHeaders(answer.headers), 'content-length': Buffer.byteLength(answer.body) };
  writeResponseHead(res, answer.status, undefined, headers);
  res.end(answer.body);
}

export function sendEdgePage(res: EdgeResponse, page: EdgePage): void {
  sendEdgeAnswer(res, pageAnswer(page));
}

/** The same answer as raw HTTP/1.1 on an upgrade's socket, then close. */
export function writeEdgeAnswer(socket: Duplex, answer: EdgeAnswer): void {
  const headers = { ...edgeResponseHeaders(answer.headers), 'content-length': String(Buffer.byteLength(answer.body)), connection: 'close' };
  const lines = [`HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Unknown'}`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) if (!/[\r\n\0]/.test(v)) lines.push(`${name}: ${v}`);
  }
  socket.end(`${lines.join('\r\n')}\r\n\r\n${answer.body}`);
}

export function writeEdgePage(socket: Duplex, page: EdgePage): void {
  writeEdgeAnswer(socket, pageAnswer(page));
}
