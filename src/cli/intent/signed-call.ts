/**
 * How `dockfleet connect` prepares one client call for the hub when it signs (issue 13): which
 * engine path the host will see, and whether the body is bound by its digest (read whole, at
 * most MAX_DIGEST_BODY bytes) or sent in sealed frames (chunked, or longer).
 */
import type { IncomingMessage } from 'node:http';
import { MAX_SEGMENT } from '../../protocol/intent-stream.ts';
import type { IntentSigner } from '../../lib/intent-keys.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { SealStream } from './seal-stream.ts';
import { signRequest } from './sign-request.ts';

/** The longest body that is read whole and signed by its digest; longer ones are sealed. */
export const MAX_DIGEST_BODY = MAX_SEGMENT;

/**
 * The hub's path for `clientUrl` on `base` (`/docker/nodes/NAME`), and the engine path the host
 * receives: the hub passes on everything after the prefix (a bare query gets its `/`). The URL
 * is normalised once here and sent as is, so the signed path is the sent path.
 */
export function hubPaths(base: string, clientUrl: string, hub: URL): { hubPath: string; enginePath: string } {
  const url = new URL(`${base}${clientUrl.startsWith('/') || clientUrl.startsWith('?') ? clientUrl : `/${clientUrl}`}`, hub);
  const hubPath = `${url.pathname}${url.search}`;
  const rest = hubPath.slice(base.length);
  return { hubPath, enginePath: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}

export interface SignedCall {
  /** Headers to add (the intent, and the sealed-body mark when sealed). */
  headers: Record<string, string>;
  /** The body to send whole (content-length set by the caller), or none; null too when sealed. */
  body: Buffer | null;
  /** When the body is sealed: the Transform the client's body goes through to the hub. */
  sealer: SealStream | null;
}

/** Whether an HTTP/1.1 request has a body at all. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Signs one ordinary (not hijacked) call, reading its body when it is small and whole. */
export async function signCall(signer: IntentSigner, node: string, req: IncomingMessage, enginePath: string): Promise<SignedCall> {
  const method = req.method ?? 'GET';
  if (!hasBody(req)) {
    req.resume();
    return { headers: signRequest(signer, node, method, enginePath).headers, body: null, sealer: null };
  }
  const length = Number(req.headers['content-length']);
  if (req.headers['transfer-encoding'] === undefined && Number.isInteger(length) && length <= MAX_DIGEST_BODY) {
    const body = (await readBounded(req as AsyncIterable<Buffer>, MAX_DIGEST_BODY)) ?? Buffer.alloc(0);
    return { headers: signRequest(signer, node, method, enginePath, body).headers, body, sealer: null };
  }
  const { headers, claims } = signRequest(signer, node, method, enginePath, 'stream');
  return { headers, body: null, sealer: new SealStream(signer, claims.nonce) };
}

/**
 * Signs a hijacked call (exec start, attach) as one sealed stream: the JSON body the client
 * sent before the upgrade goes first, framed and sealed (`body`, to send with its length as
 * Content-Length), and everything the client writes after the 101 (stdin) continues the same
 * stream through `sealer`, whose end (the client's half-close) is the final seal. So the stdin
 * is bound to this very call and body.
 */
export function signHijack(signer: IntentSigner, node: string, method: string, enginePath: string, jsonBody: Buffer): { headers: Record<string, string>; body: Buffer; sealer: SealStream } {
  const { headers, claims } = signRequest(signer, node, method, enginePath, 'stream');
  const sealer = new SealStream(signer, claims.nonce);
  return { headers, body: sealer.sealedPrefix(jsonBody), sealer };
}
