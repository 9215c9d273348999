/** Agent identity keys: Ed25519 pairs the agent makes itself. The hub keeps public keys only. */
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export interface KeyPairPem {
  publicKeyPem: string;
  privateKeyPem: string;
}

export function generateNodeKey(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A short stable id of a public key: the first 128 bits of sha256(SPKI DER), hex. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 32);
}

export function signWith(privateKeyPem: string | KeyObject, payload: Buffer): string {
  return sign(null, payload, privateKeyPem).toString('base64url');
}

export function verifySignature(publicKeyPem: string | KeyObject, payload: Buffer, signature: string): boolean {
  try {
    return verify(null, payload, publicKeyPem, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/** Parses an Ed25519 public key PEM; null when it is anything else. */
export function parseEd25519PublicKey(pem: string): KeyObject | null {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : null;
  } catch {
    return null;
  }
}

/** What a new key signs during rotation, proving the agent holds it. */
export function rotationProofPayload(node: string, keyId: string): Buffer {
  return Buffer.from(`dockfleet-rotate-v1\n${node}\n${keyId}`);
}
