/**
 * The ACME account key and the JSON Web Signatures made with it (RFC 8555 §6.2, RFC 7515):
 * ECDSA P-256 with SHA-256 (ES256, the raw r‖s signature), flattened JSON serialization. A
 * request carries the public key (`jwk`) until the account exists, its account URL (`kid`)
 * after. The key thumbprint (RFC 7638) makes each challenge's key authorization.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

export interface Jws {
  protected: string;
  payload: string;
  signature: string;
}
export type JwsSigner = { jwk: true } | { kid: string };

export class AccountKey {
  readonly #key: KeyObject;
  readonly #jwk: { crv: string; kty: string; x: string; y: string };

  private constructor(key: KeyObject) {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error('the ACME account key must be an ECDSA P-256 key');
    }
    this.#key = key;
    const { crv, kty, x, y } = createPublicKey(key).export({ format: 'jwk' });
    this.#jwk = { crv: String(crv), kty: String(kty), x: String(x), y: String(y) };
  }

  static generate(): AccountKey {
    return new AccountKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  }

  static fromPem(pem: string): AccountKey {
    return new AccountKey(createPrivateKey(pem));
  }

  /** PKCS#8 PEM: only ever handed to the SecretBox. */
  toPem(): string {
    return this.#key.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** RFC 7638: SHA-256 of the public JWK's required members in lexicographic order. */
  thumbprint(): string {
    const { crv, kty, x, y } = this.#jwk;
    return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
  }

  /** What a challenge's response must prove: `token.thumbprint` (RFC 8555 §8.1). */
  keyAuthorization(token: string): string {
    return `${token}.${this.thumbprint()}`;
  }

  /** Signs PAYLOAD (undefined: POST-as-GET, the empty payload) for URL with NONCE. */
  sign(url: string, nonce: string, signer: JwsSigner, payload: unknown): Jws {
    const header = { alg: 'ES256', nonce, url, ...('kid' in signer ? { kid: signer.kid } : { jwk: this.#jwk }) };
    const protectedB64 = Buffer.from(JSON.stringify(header)).toString('base64url');
    const payloadB64 = payload === undefined ? '' : Buffer.from(JSON.stringify(payload)).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), { key: this.#key, dsaEncoding: 'ieee-p1363' });
    return { protected: protectedB64, payload: payloadB64, signature: signature.toString('base64url') };
  }
}
