/**
 * Node hands over an upgrade request (attach/exec: `Upgrade: tcp`) without reading its body:
 * the body's bytes are in `head` and on the socket. This reads exactly Content-Length of them
 * and returns any surplus, which already belongs to the upgraded stream.
 */
import type { Duplex } from 'node:stream';
import { DockfleetError } from '../protocol/errors.ts';

export const MAX_UPGRADE_BODY = 1024 * 1024;

export function readUpgradeBody(socket: Duplex, head: Buffer, contentLength: string | undefined): Promise<{ body: Buffer; rest: Buffer }> {
  const length = Number(contentLength ?? 0);
  return new Promise((resolve, reject) => {
    if (!Number.isInteger(length) || length < 0 || length > MAX_UPGRADE_BODY) {
      return reject(new DockfleetError('bad_request', 'upgrade request has a malformed or oversized Content-Length'));
    }
    let buffered = head;
    const finish = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      resolve({ body: buffered.subarray(0, length), rest: buffered.subarray(length) });
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= length) finish();
    };
    const onEnd = (): void => reject(new DockfleetError('bad_request', 'client closed before sending the request body'));
    if (buffered.length >= length) return finish();
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
}
