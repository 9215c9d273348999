/** Writing an HTTP/1.1 response by hand, for sockets taken over from Node's HTTP server
 * (upgrade requests): the status line, the headers, the blank line. */
import { STATUS_CODES } from 'node:http';

export type HeadHeaders = Record<string, string | number | string[] | undefined>;

export function http1Head(status: number, headers: HeadHeaders, reason = status === 101 ? 'UPGRADED' : (STATUS_CODES[status] ?? 'Status')): string {
  const lines = [`HTTP/1.1 ${status} ${reason}`];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** A whole JSON answer on a raw socket, which is then closed. */
export function http1JsonAnswer(status: number, body: string): string {
  return http1Head(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' }) + body;
}
