/** Docker-format error answers, so the stock CLI prints `Error response from daemon: … [code]`
 * (the code also travels in X-Dockfleet-Error). */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { http1Head } from '../../lib/http1-head.ts';
import { dockerErrorBody } from '../../protocol/docker-tunnel.ts';
import type { DockfleetError } from '../../protocol/errors.ts';

export function writeDockerError(res: ServerResponse, err: DockfleetError): void {
  if (res.headersSent) return void res.destroy();
  const body = dockerErrorBody(`${err.message} [${err.code}]`);
  res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-dockfleet-error': err.code });
  res.end(body);
}

/** The same on a raw socket (a hijack that never got its upgrade). */
export function writeDockerErrorToSocket(socket: Duplex, err: DockfleetError): void {
  const body = dockerErrorBody(`${err.message} [${err.code}]`);
  socket.end(http1Head(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-dockfleet-error': err.code, connection: 'close' }) + body);
}
