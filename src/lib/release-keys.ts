/**
 * Release keys in Node: make one, sign a package (manifest over its SHA-256 and size), and verify
 * a package against a pinned key. The CLI signs, the hub checks on upload (to catch mistakes early),
 * and the agent checks again alone before installing anything. Ed25519 through intent-keys.ts.
 */
import { createHash } from 'node:crypto';
import { RELEASE_SIGNATURE_VERSION, releaseSignature, releaseSigningBytes, type ReleaseManifest, type ReleaseSignature } from '../protocol/releases.ts';
import { IntentSigner, generateOperatorKey, verifyBytes, type OperatorKeyPair } from './intent-keys.ts';

export function generateReleaseKey(): OperatorKeyPair {
  return generateOperatorKey();
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function signRelease(pkg: Buffer, version: string, privateKeyPem: string): ReleaseSignature {
  const signer = new IntentSigner(privateKeyPem);
  const manifest: ReleaseManifest = { name: 'dockfleet', version, sha256: sha256Hex(pkg), size: pkg.length };
  const sig = Buffer.from(signer.signBytes(releaseSigningBytes(manifest))).toString('base64url');
  return { v: RELEASE_SIGNATURE_VERSION, manifest, key: signer.publicKey, sig };
}

export type ReleaseCheck = { ok: true; manifest: ReleaseManifest } | { ok: false; reason: string };

/** Verifies `pkg` and its signature document against `pinnedKey` (signature first, then the bytes). */
export function verifyRelease(pkg: Buffer, signatureDoc: unknown, pinnedKey: string, expectVersion?: string): ReleaseCheck {
  const parsed = releaseSignature.safeParse(signatureDoc);
  if (!parsed.success) return { ok: false, reason: 'the release signature is malformed' };
  const { manifest, sig } = parsed.data;
  if (!verifyBytes(pinnedKey, releaseSigningBytes(manifest), Buffer.from(sig, 'base64url'))) {
    return { ok: false, reason: 'the release is not signed by the pinned release key' };
  }
  if (pkg.length !== manifest.size) return { ok: false, reason: `the package is ${pkg.length} bytes, its signed manifest says ${manifest.size}` };
  if (sha256Hex(pkg) !== manifest.sha256) return { ok: false, reason: 'the package does not match the SHA-256 in its signed manifest' };
  if (expectVersion !== undefined && manifest.version !== expectVersion) {
    return { ok: false, reason: `the signed manifest names version ${manifest.version}, not ${expectVersion}` };
  }
  return { ok: true, manifest };
}
