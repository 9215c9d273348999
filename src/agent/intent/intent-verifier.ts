/**
 * The host's check of one signed intent (issue 13): given the header value and what this agent
 * is about to do — its node name, the exact operation it computed from the request it will send
 * to the engine (or the job's kind), and how the body travels — it answers with the claims or
 * with a reason for people. In order: the wire form, a key this host's policy lists, the Ed25519
 * signature over the exact bytes parsed, this node, this operation, the body mode, a lifetime
 * of at most five minutes, not expired, not signed in the future beyond the clock skew, and a
 * nonce never used before (remembered in the state dir until it expires, nonce-store.ts).
 * The nonce is spent only once everything else holds, so nothing unsigned can use one up.
 *
 * The body itself is checked by the caller: `bodyMatches` for a digest, unseal-stream.ts for a
 * sealed stream.
 */
import { createHash } from 'node:crypto';
import { verifyBytes } from '../../lib/intent-keys.ts';
import { CLOCK_SKEW_MS, MAX_INTENT_LIFETIME_MS, STREAM_BODY, decodeIntent, type IntentClaims } from '../../protocol/intent.ts';
import type { SignedIntentPolicy } from '../policy/policy-file.ts';
import type { NonceStore } from './nonce-store.ts';

export type IntentCheck = { ok: true; claims: IntentClaims } | { ok: false; reason: string; claims?: IntentClaims };

export interface IntentTarget {
  /** This node's name on its hub. */
  node: string;
  /** `dockerOp(…)` of the request as the engine will receive it, or `jobOp(kind)`. */
  op: string;
  /** How the body travels: whole (digest in the intent) or in sealed frames. */
  bodyMode: 'digest' | 'stream';
}

export class IntentVerifier {
  readonly #operators: ReadonlySet<string>;
  readonly #nonces: NonceStore;
  readonly #now: () => number;

  constructor(policy: SignedIntentPolicy, nonces: NonceStore, now: () => number = Date.now) {
    this.#operators = new Set(policy.operators);
    this.#nonces = nonces;
    this.#now = now;
  }

  check(headerValue: string | string[] | undefined, target: IntentTarget): IntentCheck {
    if (headerValue === undefined || headerValue === '') return { ok: false, reason: 'the call carries no signed intent' };
    if (Array.isArray(headerValue)) return { ok: false, reason: 'the call carries more than one signed intent' };
    const decoded = decodeIntent(headerValue);
    if (!decoded.ok) return decoded;
    const { claims, signedBytes, signature } = decoded.intent;
    const refuse = (reason: string): IntentCheck => ({ ok: false, reason, claims });
    if (!this.#operators.has(claims.key)) return refuse(`it is signed by ${claims.key}, a key this host's policy does not list`);
    if (!verifyBytes(claims.key, signedBytes, signature)) return refuse('its signature does not verify');
    if (claims.node !== target.node) return refuse(`it was signed for node ${JSON.stringify(claims.node.slice(0, 128))}, and this is ${target.node}`);
    if (claims.op !== target.op) return refuse(`it was signed for ${JSON.stringify(claims.op.slice(0, 300))}, and this call is ${JSON.stringify(target.op.slice(0, 300))}`);
    const streamed = claims.body === STREAM_BODY;
    if (streamed !== (target.bodyMode === 'stream')) {
      return refuse(streamed ? 'it was signed for a sealed body, and this body is not sealed' : 'this body arrives sealed, and the intent signed a digest');
    }
    const now = this.#now();
    if (claims.exp <= claims.iat || claims.exp - claims.iat > MAX_INTENT_LIFETIME_MS) return refuse(`its lifetime is ${claims.exp - claims.iat} ms; at most ${MAX_INTENT_LIFETIME_MS} ms is accepted`);
    if (claims.iat > now + CLOCK_SKEW_MS) return refuse(`it was signed ${Math.round((claims.iat - now) / 1000)} s in the future by this host's clock`);
    if (claims.exp <= now) return refuse(`it expired at ${new Date(claims.exp).toISOString()}`);
    const used = this.#nonces.use(claims.nonce, claims.exp, now);
    if (!used.ok) return refuse(used.reason);
    return { ok: true, claims };
  }
}

/** Whether `body` is exactly what a digest-mode intent signed. */
export function bodyMatches(claims: IntentClaims, body: Uint8Array): boolean {
  return claims.body === `sha256:${createHash('sha256').update(body).digest('hex')}`;
}
