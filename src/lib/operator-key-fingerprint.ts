/**
 * An operator key's short fingerprint: how people, the hub's key list, the CLI's key files and the
 * policy summary name a key (issue 13). The first 20 hex digits (80 bits) of SHA-256 over the
 * key's 32 raw bytes, so it is the same wherever the key was made (the browser computes it with
 * WebCrypto's SHA-256 over the same bytes). Hex: safe in file names and URLs, never starts with `-`.
 */
import { createHash } from 'node:crypto';
import { operatorKeyBytes } from '../protocol/intent.ts';

export const FINGERPRINT_LENGTH = 20;
export const OPERATOR_KEY_FINGERPRINT = /^[0-9a-f]{20}$/;

/** Throws (with the key form's message) when `publicKey` is not an operator key. */
export function operatorKeyFingerprint(publicKey: string): string {
  return createHash('sha256').update(operatorKeyBytes(publicKey)).digest('hex').slice(0, FINGERPRINT_LENGTH);
}
