/**
 * Signing one Docker call for a host that asks for signed intent (issue 13): the headers that go
 * with the request, `x-dockfleet-intent` and, for a body sent in sealed frames,
 * `x-dockfleet-intent-body: sealed`. A body the caller has whole is bound by its SHA-256; a body
 * that is streamed (`'stream'`) is bound by the seals of seal-stream.ts, which name the nonce.
 */
import { createHash } from 'node:crypto';
import { INTENT_BODY_HEADER, INTENT_HEADER, SEALED_BODY, STREAM_BODY, dockerOp, type IntentClaims } from '../../protocol/intent.ts';
import type { IntentSigner } from '../../lib/intent-keys.ts';

export interface SignedRequest {
  headers: Record<string, string>;
  claims: IntentClaims;
}

const EMPTY_DIGEST = `sha256:${createHash('sha256').digest('hex')}`;

/** `sha256:<hex>` of exactly these bytes (the empty body included). */
export function bodyDigest(body: Uint8Array | undefined): string {
  if (body === undefined || body.length === 0) return EMPTY_DIGEST;
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/**
 * The intent headers for `method pathAndQuery` on `node`. `pathAndQuery` must be what the engine
 * will receive (the hub strips only its `/docker/nodes/NAME` prefix). `body`: the whole body, or
 * nothing for an empty one, or `'stream'` when it follows in sealed frames.
 */
export function signRequest(signer: IntentSigner, node: string, method: string, pathAndQuery: string, body?: Uint8Array | typeof STREAM_BODY): SignedRequest {
  const streamed = body === STREAM_BODY;
  const { wire, claims } = signer.intent(node, dockerOp(method, pathAndQuery), streamed ? STREAM_BODY : bodyDigest(body));
  const headers: Record<string, string> = { [INTENT_HEADER]: wire };
  if (streamed) headers[INTENT_BODY_HEADER] = SEALED_BODY;
  return { headers, claims };
}
