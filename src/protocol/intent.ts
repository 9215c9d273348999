/**
 * Signed intent: what an operator's key signs, and how a host reads it (issue 13).
 *
 * A host whose local policy file has `signedIntent` runs mutating work (or all work) only when it
 * carries a signature, by an operator key that file lists, over one *intent*:
 *
 *   { v: 1, key, node, op, body, nonce, iat, exp, user? }
 *
 * - `key`: the signer's public key in its policy-file form, `ed25519:<base64url of 32 bytes>`.
 * - `node`: the node's name on its hub (a signature for one node is refused by every other).
 * - `op`: the exact operation, `docker <METHOD> <path and query as the engine receives them>`,
 *   or `job <kind>` for a job (its canonical form is the body).
 * - `body`: `sha256:<hex>` of the exact request body (the empty body included), or `stream` when
 *   the body follows in sealed frames (intent-stream.ts), which bind every byte to this intent.
 * - `nonce`: 16–32 random bytes, base64url; a host accepts each nonce once until `exp`.
 * - `iat`, `exp`: milliseconds since the epoch; `exp - iat` is at most five minutes.
 * - `user`: the name the signer goes by, for people reading logs; never trusted for access.
 *
 * On the wire (HTTP header `X-Dockfleet-Intent`, or a job's `intent` field) an intent is
 * `<base64url(JSON)>.<base64url(signature)>`, and the signature is Ed25519 over the ASCII bytes
 * of `dockfleet-intent-v1.<base64url(JSON)>`: the verifier checks the very bytes it parses.
 *
 * This file is shared by the agent, the CLI and the browser: no Node-only imports. Signing and
 * verifying live with each platform (lib/intent-keys.ts in Node, WebCrypto in the browser).
 */
export const INTENT_HEADER = 'x-dockfleet-intent';
/** `sealed` on a request whose body (or a hijacked call's stdin) travels in sealed frames. */
export const INTENT_BODY_HEADER = 'x-dockfleet-intent-body';
export const SEALED_BODY = 'sealed';
/** Set by the hub only (a client's are dropped): the user it names, and its audit row, for the host's log. */
export const ACTOR_HEADER = 'x-dockfleet-actor';
export const AUDIT_REF_HEADER = 'x-dockfleet-audit-ref';
export const INTENT_VERSION = 1;
export const INTENT_DOMAIN = 'dockfleet-intent-v1';
/** The longest an intent may live, and how far a signer's clock may run ahead of the host's. */
export const MAX_INTENT_LIFETIME_MS = 5 * 60_000;
export const CLOCK_SKEW_MS = 30_000;
/** A whole intent header, bounded before anything is decoded. */
export const MAX_INTENT_LENGTH = 16 * 1024;

export const OPERATOR_KEY_PREFIX = 'ed25519:';
/** `ed25519:` and the 32-byte public key in base64url without padding (43 characters). */
export const OPERATOR_KEY = /^ed25519:[A-Za-z0-9_-]{43}$/;
export const BODY_DIGEST = /^sha256:[0-9a-f]{64}$/;
export const STREAM_BODY = 'stream';

const NONCE = /^[A-Za-z0-9_-]{22,43}$/;

export interface IntentClaims {
  v: typeof INTENT_VERSION;
  key: string;
  node: string;
  op: string;
  /** `sha256:<hex>` or STREAM_BODY. */
  body: string;
  nonce: string;
  iat: number;
  exp: number;
  user?: string;
}

const isText =
  (min: number, max: number) =>
  (x: unknown): boolean =>
    typeof x === 'string' && x.length >= min && x.length <= max;
const isMillis = (x: unknown): boolean => Number.isSafeInteger(x) && (x as number) >= 0;

/**
 * What each claim must hold; no other member is accepted. Checked by hand rather than with a
 * schema library: a host runs this for every signed call, mostly with cold caches, where a
 * library's generic machinery cost about 70 µs of the budget (bench/signed-intent.bench.ts).
 */
const CLAIM_RULES: Record<keyof IntentClaims, (x: unknown) => boolean> = {
  v: (x) => x === INTENT_VERSION,
  key: (x) => typeof x === 'string' && OPERATOR_KEY.test(x),
  node: isText(1, 128),
  op: isText(1, 8192),
  body: (x) => x === STREAM_BODY || (typeof x === 'string' && BODY_DIGEST.test(x)),
  nonce: (x) => typeof x === 'string' && NONCE.test(x),
  iat: isMillis,
  exp: isMillis,
  user: (x) => x === undefined || isText(0, 128)(x),
};

/** The claims in `value`, or which one is wrong. */
export function readClaims(value: unknown): { ok: true; claims: IntentClaims } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'claims: not an object' };
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(CLAIM_RULES, name)) return { ok: false, reason: `${name.slice(0, 64)}: not a claim` };
  }
  for (const [name, rule] of Object.entries(CLAIM_RULES)) {
    if (!rule((value as Record<string, unknown>)[name])) return { ok: false, reason: `${name}: missing or invalid` };
  }
  return { ok: true, claims: value as IntentClaims };
}

/** A decoded intent: its claims, the exact bytes that were signed, and the signature. */
export interface DecodedIntent {
  claims: IntentClaims;
  signedBytes: Uint8Array;
  signature: Uint8Array;
}

/** The operation string for a Docker call: method and the path with its query, unchanged. */
export function dockerOp(method: string, pathAndQuery: string): string {
  return `docker ${method.toUpperCase()} ${pathAndQuery}`;
}

/** The operation string for a job of this kind (its canonical form is the signed body). */
export function jobOp(kind: string): string {
  return `job ${kind}`;
}

/** The bytes an intent signature covers: the domain, a dot, and the payload as sent. */
export function intentSigningBytes(payloadB64: string): Uint8Array {
  return new TextEncoder().encode(`${INTENT_DOMAIN}.${payloadB64}`);
}

/** The wire form of a signed intent. */
export function encodeIntent(payloadB64: string, signature: Uint8Array): string {
  return `${payloadB64}.${toBase64Url(signature)}`;
}

/** The payload half of the wire form, for the signer to sign. */
export function intentPayload(claims: IntentClaims): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify(claims)));
}

/** Reads the wire form; a message for people when it is not an intent at all. */
export function decodeIntent(wire: string): { ok: true; intent: DecodedIntent } | { ok: false; reason: string } {
  if (wire.length > MAX_INTENT_LENGTH) return { ok: false, reason: 'the signed intent is too long' };
  const parts = wire.split('.');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return { ok: false, reason: 'the signed intent is not in the form PAYLOAD.SIGNATURE' };
  let json: unknown;
  let signature: Uint8Array;
  try {
    json = JSON.parse(utf8Strict(fromBase64Url(parts[0]!)));
    signature = fromBase64Url(parts[1]!);
  } catch {
    return { ok: false, reason: 'the signed intent is not valid base64url JSON' };
  }
  const read = readClaims(json);
  if (!read.ok) return { ok: false, reason: `the signed intent is malformed (${read.reason})` };
  if (signature.length !== 64) return { ok: false, reason: 'the signed intent has no Ed25519 signature' };
  return { ok: true, intent: { claims: read.claims, signedBytes: intentSigningBytes(parts[0]!), signature } };
}

/** The 32 raw bytes of an operator key in its policy-file form (throws on anything else). */
export function operatorKeyBytes(key: string): Uint8Array {
  if (!OPERATOR_KEY.test(key)) throw new Error('an operator key looks like ed25519: followed by 43 base64url characters');
  return fromBase64Url(key.slice(OPERATOR_KEY_PREFIX.length));
}

export function operatorKeyOf(raw: Uint8Array): string {
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  return `${OPERATOR_KEY_PREFIX}${toBase64Url(raw)}`;
}

/** Canonical JSON (canonical-json.ts), the signed form of a job. */
export { canonicalJson } from './canonical-json.ts';

/**
 * Node's Buffer where there is one (the CLI and the agent: native base64url, a few µs less per
 * call on both ends), the browser's btoa/atob elsewhere. Same text either way.
 */
interface NodeBuffer extends Uint8Array {
  toString(encoding?: 'base64url' | 'utf8'): string;
}
const NodeBuffer = (globalThis as { Buffer?: { from(data: Uint8Array | string, encoding?: 'base64url'): NodeBuffer } }).Buffer;

export function toBase64Url(bytes: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(bytes).toString('base64url');
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error('not base64url');
  if (NodeBuffer) return NodeBuffer.from(text, 'base64url');
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** UTF-8 text of `bytes`, throwing on anything that is not UTF-8. */
function utf8Strict(bytes: Uint8Array): string {
  if (NodeBuffer) {
    // The lenient decoder is the fast one; a replacement character sends it to the strict one.
    const text = NodeBuffer.from(bytes).toString('utf8');
    if (!text.includes('\uFFFD')) return text;
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}
