/**
 * Hijacked Docker calls (attach, exec start): the client asks `Upgrade: tcp`, and after the
 * engine's 101 the connection carries raw bytes both ways. The hub reads the request body
 * (Content-Length bytes; Node hands an upgrade request's body over as raw socket bytes), sends
 * it on a stream marked for upgrade, then writes Docker's own 101 handshake and pipes. Closing
 * the client's write side (stdin EOF) ends the stream's request side; the engine's end ends it all.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BODY_LENGTH_HEADER, DOCKER_PREFIX, UPGRADED_HEADER, UPGRADE_HEADER, clientRequestHeaders } from '../../protocol/docker-tunnel.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { NodeLink } from '../node-registry.ts';
import { cancelUnlessDone } from '../../lib/h2-channel.ts';
import { http1Head } from '../../lib/http1-head.ts';
import { readUpgradeBody } from '../../lib/upgrade-body.ts';
import { writeDockerErrorToSocket } from './docker-errors.ts';
import { CLIENT_ONLY_HEADERS, intentForwardHeaders, responseHeaders, type CallOrigin } from './node-proxy.ts';

const HIJACK_DROPPED_HEADERS = new Set([...CLIENT_ONLY_HEADERS, 'content-length']);

export async function hijackToNode(link: NodeLink, enginePath: string, req: IncomingMessage, socket: Duplex, head: Buffer, origin: CallOrigin = {}): Promise<number> {
  const { body, rest } = await readUpgradeBody(socket, head, req.headers['content-length']);
  const stream = link.openStream(
    {
      ':method': req.method ?? 'POST',
      ':path': `${DOCKER_PREFIX}${enginePath}`,
      ...clientRequestHeaders(req.headers, HIJACK_DROPPED_HEADERS),
      ...intentForwardHeaders(req.headers, origin),
      [UPGRADE_HEADER]: 'tcp',
      [BODY_LENGTH_HEADER]: String(body.length),
    },
    { endStream: false },
  );
  if (body.length > 0) stream.write(body);
  let upgraded = false;
  return new Promise((resolve) => {
    stream.once('response', (headers) => {
      const status = Number(headers[':status']);
      if (headers[UPGRADED_HEADER] === undefined) {
        // The engine refused (no such container, policy, …): an ordinary answer, then close.
        socket.write(http1Head(status, { ...responseHeaders(headers), connection: 'close' }));
        stream.pipe(socket);
        stream.once('end', () => resolve(status));
        return;
      }
      upgraded = true;
      socket.write(http1Head(101, { ...responseHeaders(headers), connection: 'Upgrade', upgrade: 'tcp' }));
      if (rest.length > 0) stream.write(rest);
      stream.pipe(socket);
      socket.pipe(stream);
      socket.resume();
      resolve(101);
    });
    stream.once('error', (err) => {
      // After the 101 the connection is raw bytes: an error can only close it.
      if (upgraded) return void socket.destroy();
      writeDockerErrorToSocket(socket, new DockfleetError('node_offline', `node ${link.nodeName} went away: ${err.message}`));
      resolve(502);
    });
    socket.once('error', () => stream.destroy());
    socket.once('close', () => cancelUnlessDone(stream));
  });
}
