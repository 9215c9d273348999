/** Hub CA pinning: digest of a CA certificate and verification of a TLS peer chain against it. */
import { X509Certificate, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { TLSSocket, DetailedPeerCertificate } from 'node:tls';
import { DockfleetError } from './errors.ts';

/** Lowercase hex SHA-256 of a certificate's DER (PEM string with one certificate, or DER Buffer). */
export function caDigest(pemOrDer: string | Buffer): string {
  return sha256Hex(new X509Certificate(pemOrDer).raw);
}

/**
 * Verifies a TLS peer chain (DER, leaf first) against a pinned CA digest and the expected host.
 * Returns the pinned CA as PEM; throws a one-line DockfleetError (`hub_untrusted`) on any failure.
 */
export function verifyChainToPinnedCa(peerChainDer: Buffer[], digest: string, host: string): { caPem: string } {
  if (peerChainDer.length === 0) throw untrusted('hub presented no certificate');
  const want = digest.trim().toLowerCase();
  const certs = peerChainDer.map((der) => new X509Certificate(der));
  const pinnedIdx = peerChainDer.findIndex((der) => sha256Hex(der) === want);
  if (pinnedIdx < 0) throw untrusted("hub CA does not match the enrollment code's digest");

  for (let i = 0; i < pinnedIdx; i++) {
    const child = certs[i]!;
    const issuer = certs[i + 1]!;
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      throw untrusted(`hub certificate is not signed by the pinned CA (broken link at ${oneLine(child.subject)})`);
    }
  }

  const now = Date.now();
  for (let i = 0; i <= pinnedIdx; i++) {
    const c = certs[i]!;
    if (Date.parse(c.validTo) < now) throw untrusted(`hub certificate expired (${oneLine(c.subject)}, not after ${c.validTo})`);
    if (Date.parse(c.validFrom) > now) {
      throw untrusted(`hub certificate is not yet valid (${oneLine(c.subject)}, not before ${c.validFrom})`);
    }
  }

  const name = host.trim().replace(/^\[(.*)\]$/, '$1');
  const leaf = certs[0]!;
  const covered = isIP(name) ? leaf.checkIP(name) !== undefined : leaf.checkHost(name.toLowerCase()) !== undefined;
  if (!covered) throw untrusted(`hub certificate does not cover host ${host}`);

  return { caPem: certs[pinnedIdx]!.toString() };
}

/** DER certificates presented by the TLS peer, leaf first, walking `issuerCertificate` until it repeats. */
export function peerChainDer(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}

function untrusted(message: string): DockfleetError {
  return new DockfleetError('hub_untrusted', message);
}
