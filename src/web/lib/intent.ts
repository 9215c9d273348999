/**
 * Signing a Docker call in the browser (issue 13): the intent claims and wire form of
 * protocol/intent.ts, signed with this browser's non-extractable Ed25519 key through WebCrypto.
 *
 * A body the page holds whole and of at most 1 MiB is signed by its digest (`sha256:` over the
 * exact bytes sent, the empty body included). A longer one (a container-files upload) is sent in
 * sealed frames (protocol/intent-stream.ts) built here in memory, bounded by MAX_SEALED_UPLOAD.
 * Each seal covers the SHA-256 of everything before it; WebCrypto has no incremental SHA-256,
 * so the running hash is @noble/hashes' (each byte hashed once, where digesting the prefix
 * again at each seal hashed a 64 MiB upload 32 times over).
 *
 * Loaded on demand by lib/signing.ts, off the first load.
 */
import {
  INTENT_BODY_HEADER,
  INTENT_HEADER,
  INTENT_VERSION,
  SEALED_BODY,
  STREAM_BODY,
  dockerOp,
  encodeIntent,
  intentPayload,
  intentSigningBytes,
  jobOp,
  toBase64Url,
  type IntentClaims,
} from '../../protocol/intent.ts';
import { FRAME_DATA, FRAME_SEAL, MAX_SEGMENT, SEAL_BODY_BYTES, frameHead, sealBody, sealSigningBytes } from '../../protocol/intent-stream.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { BrowserKey } from './operator-key.ts';

/** How long a browser's intent is good for: enough for a slow hub, far below the five-minute cap. */
export const INTENT_LIFETIME_MS = 60_000;
/** The largest body the UI will seal (it holds the body and its frames in memory). */
export const MAX_SEALED_UPLOAD = 64 * 1024 * 1024;

async function sign(key: BrowserKey, bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key.keyPair.privateKey, bytes as BufferSource));
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as BufferSource));
  return [...hash].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** One signed intent in wire form. */
export async function signIntent(key: BrowserKey, node: string, op: string, body: IntentClaims['body']): Promise<{ wire: string; claims: IntentClaims }> {
  const iat = Date.now();
  const claims: IntentClaims = {
    v: INTENT_VERSION,
    key: key.publicKey,
    node,
    op,
    body,
    nonce: toBase64Url(crypto.getRandomValues(new Uint8Array(18))),
    iat,
    exp: iat + INTENT_LIFETIME_MS,
    user: key.user,
  };
  const payload = intentPayload(claims);
  return { wire: encodeIntent(payload, await sign(key, intentSigningBytes(payload))), claims };
}

/** The exact bytes fetch() will send for this body (the UI's bodies are strings, bytes or blobs). */
export async function bodyBytes(body: BodyInit | undefined): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof body === 'string') return new TextEncoder().encode(body);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  throw new Error('this request body cannot be signed (the UI signs strings, bytes and files)');
}

/** The body in sealed frames: data of at most MAX_SEGMENT bytes, each followed by its seal. */
async function sealedFrames(key: BrowserKey, nonce: string, data: Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const running = sha256.create();
  let index = 0n;
  let offset = 0;
  do {
    const end = Math.min(data.length, offset + MAX_SEGMENT);
    if (end > offset) parts.push(frameHead(FRAME_DATA, end - offset), data.subarray(offset, end));
    const final = end === data.length;
    running.update(data.subarray(offset, end));
    const digest = bytesToHex(running.clone().digest());
    const signature = await sign(key, sealSigningBytes(nonce, index, final, BigInt(end), digest));
    parts.push(frameHead(FRAME_SEAL, SEAL_BODY_BYTES), sealBody(index, final, BigInt(end), signature));
    index += 1n;
    offset = end;
  } while (offset < data.length);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Headers (and, for a long body, the framed body) for one Docker call to `node`, whose path and
 * query are `enginePath` exactly as the hub passes them on to the host's engine.
 */
export async function signDockerCall(key: BrowserKey, node: string, method: string, enginePath: string, body: BodyInit | undefined): Promise<{ headers: Record<string, string>; body?: BodyInit }> {
  const bytes = await bodyBytes(body);
  const op = dockerOp(method, enginePath);
  if (bytes.length <= MAX_SEGMENT) {
    const { wire } = await signIntent(key, node, op, `sha256:${await sha256Hex(bytes)}`);
    return { headers: { [INTENT_HEADER]: wire } };
  }
  if (bytes.length > MAX_SEALED_UPLOAD) {
    throw new Error(`this host requires signed intent, and the web UI signs uploads of at most ${MAX_SEALED_UPLOAD / 1024 / 1024} MiB: use \`dockfleet connect\` and \`docker cp\` for larger ones`);
  }
  const { wire, claims } = await signIntent(key, node, op, STREAM_BODY);
  return { headers: { [INTENT_HEADER]: wire, [INTENT_BODY_HEADER]: SEALED_BODY }, body: (await sealedFrames(key, claims.nonce, bytes)) as BodyInit };
}

/**
 * Signs every job of a rollout the hub filed awaiting signatures (`"sign": true` on deploy), one
 * intent per job over `job <kind>` and `sha256:` of its signedBody, and hands each to the hub
 * (POST /api/v1/jobs/ID/intent). The browser checks only that each job is for the stack and kind
 * it asked for on a node the proposal names: the page's code comes from the hub, so a deeper
 * check here would guard against nothing the hub could not also change (the CLI's is the strong one).
 */
export async function signRollout(
  key: BrowserKey,
  stack: string,
  proposal: { kind: string; nodes: string[]; jobs: Array<{ id: string; node: string; signedBody: string }> },
  attach: (jobId: string, intent: string) => Promise<void>,
): Promise<void> {
  for (const job of proposal.jobs) {
    const body = JSON.parse(job.signedBody) as { kind?: unknown; stack?: unknown; node?: unknown };
    if (body.stack !== stack || body.kind !== proposal.kind || body.node !== job.node || !proposal.nodes.includes(job.node)) {
      throw new Error(`the hub proposed job ${job.id} for ${String(body.kind)} of ${String(body.stack)} on ${String(body.node)}, not what was asked: nothing was signed`);
    }
  }
  for (const job of proposal.jobs) {
    const { wire } = await signIntent(key, job.node, jobOp(proposal.kind), `sha256:${await sha256Hex(new TextEncoder().encode(job.signedBody))}`);
    await attach(job.id, wire);
  }
}
