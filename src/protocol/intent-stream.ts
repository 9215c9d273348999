/**
 * Sealed streams: how a body too long (or too live) to digest before it is sent stays bound to
 * its signed intent (intent.ts, `body: "stream"`), for uploads (`docker cp`, `build`, `load`) and
 * the stdin of `exec`/`attach`.
 *
 * The signer sends the body as frames, each a 1-byte type, a 4-byte big-endian length and that
 * many bytes:
 *
 *   'D' data   — up to MAX_SEGMENT bytes of the body;
 *   'S' seal   — index (8 bytes BE), final (1 byte, 0 or 1), total bytes so far (8 bytes BE) and
 *                an Ed25519 signature (64 bytes) by the intent's key over sealSigningBytes(…).
 *
 * The digest a seal signs is SHA-256 over *every* body byte from the first, so a seal vouches for
 * the whole prefix: the host keeps its own running digest and checks each seal against it.
 * Hence, with nothing more than the signer's key:
 * - alter, splice or reorder bytes → the next seal's digest differs: refused;
 * - drop or repeat a seal → its index is out of order: refused;
 * - truncate → no final seal before the end: the call is cut off, and the engine never sees the end;
 * - extend → bytes after the final seal: refused;
 * - move a stream to another call → the seal names the intent's nonce: refused.
 * A host passes bytes on only after the seal that covers them has been checked, and holds at most
 * MAX_SEGMENT unsealed bytes, so what reaches the engine is always a prefix of what the signer sent.
 */

export const FRAME_DATA = 0x44; // 'D'
export const FRAME_SEAL = 0x53; // 'S'
export const FRAME_HEAD_BYTES = 5;
/** Most bytes between two seals; the host buffers at most this much. */
export const MAX_SEGMENT = 1024 * 1024;
export const SEAL_BODY_BYTES = 8 + 1 + 8 + 64;
export const STREAM_DOMAIN = 'dockfleet-intent-stream-v1';

/** The bytes a seal's signature covers. */
export function sealSigningBytes(nonce: string, index: bigint, final: boolean, total: bigint, digestHex: string): Uint8Array {
  return new TextEncoder().encode(`${STREAM_DOMAIN}.${nonce}.${index}.${final ? 1 : 0}.${total}.${digestHex}`);
}

/** One frame's 5-byte head. */
export function frameHead(type: number, length: number): Uint8Array {
  const head = new Uint8Array(FRAME_HEAD_BYTES);
  head[0] = type;
  new DataView(head.buffer).setUint32(1, length, false);
  return head;
}

/** A seal frame's body (without its head). */
export function sealBody(index: bigint, final: boolean, total: bigint, signature: Uint8Array): Uint8Array {
  if (signature.length !== 64) throw new Error('a seal carries a 64-byte Ed25519 signature');
  const body = new Uint8Array(SEAL_BODY_BYTES);
  const view = new DataView(body.buffer);
  view.setBigUint64(0, index, false);
  body[8] = final ? 1 : 0;
  view.setBigUint64(9, total, false);
  body.set(signature, 17);
  return body;
}

export interface Seal {
  index: bigint;
  final: boolean;
  total: bigint;
  signature: Uint8Array;
}

export function readSeal(body: Uint8Array): Seal | null {
  if (body.length !== SEAL_BODY_BYTES || (body[8] !== 0 && body[8] !== 1)) return null;
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  return { index: view.getBigUint64(0, false), final: body[8] === 1, total: view.getBigUint64(9, false), signature: body.slice(17) };
}
