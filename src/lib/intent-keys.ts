/**
 * Ed25519 for signed intent in Node (the CLI signs, the agent verifies): operator keys in their
 * policy-file form (`ed25519:<base64url>`), signing and verifying bytes, and intents built and
 * signed in one step. The browser does the same with WebCrypto (src/web/lib/).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { INTENT_VERSION, MAX_INTENT_LIFETIME_MS, OPERATOR_KEY_PREFIX, encodeIntent, intentPayload, intentSigningBytes, type IntentClaims } from '../protocol/intent.ts';

export interface OperatorKeyPair {
  /** The public half in policy-file form. */
  publicKey: string;
  /** PKCS#8 PEM; written only to the signer's own machine, mode 0600. */
  privateKeyPem: string;
}

export function generateOperatorKey(): OperatorKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKey: operatorKeyFromKeyObject(publicKey), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

export function operatorKeyFromKeyObject(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new Error('not an Ed25519 key');
  return `${OPERATOR_KEY_PREFIX}${jwk.x}`;
}

/** A verifying key per operator key string, parsed once. */
const publicKeys = new Map<string, KeyObject>();

export function publicKeyObject(operatorKey: string): KeyObject {
  let key = publicKeys.get(operatorKey);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: operatorKey.slice(OPERATOR_KEY_PREFIX.length) }, format: 'jwk' });
    if (publicKeys.size > 1000) publicKeys.clear();
    publicKeys.set(operatorKey, key);
  }
  return key;
}

export function verifyBytes(operatorKey: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, data, publicKeyObject(operatorKey), signature);
  } catch {
    return false;
  }
}

/** A signer holding one private key. */
export class IntentSigner {
  readonly publicKey: string;
  readonly #privateKey: KeyObject;
  readonly #user: string | undefined;

  constructor(privateKeyPem: string, user?: string) {
    this.#privateKey = createPrivateKey(privateKeyPem);
    this.publicKey = operatorKeyFromKeyObject(createPublicKey(this.#privateKey));
    this.#user = user;
  }

  signBytes(data: Uint8Array): Uint8Array {
    return sign(null, data, this.#privateKey);
  }

  /** A fresh intent for one operation on one node, good for `lifetimeMs` (at most five minutes). */
  intent(node: string, op: string, body: IntentClaims['body'], lifetimeMs = 60_000): { wire: string; claims: IntentClaims } {
    const iat = Date.now();
    const claims: IntentClaims = {
      v: INTENT_VERSION,
      key: this.publicKey,
      node,
      op,
      body,
      nonce: randomBytes(18).toString('base64url'),
      iat,
      exp: iat + Math.min(lifetimeMs, MAX_INTENT_LIFETIME_MS),
      ...(this.#user !== undefined ? { user: this.#user } : {}),
    };
    const payload = intentPayload(claims);
    return { wire: encodeIntent(payload, this.signBytes(intentSigningBytes(payload))), claims };
  }
}
