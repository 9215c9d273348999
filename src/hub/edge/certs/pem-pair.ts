/**
 * Reads a certificate chain and its private key (PEM) the way the edge will serve them, and
 * refuses with a clear reason what it could not serve: no certificate, a key that is not a
 * plain PEM private key, a key that does not belong to the certificate, a certificate already
 * expired, one that names no DNS host. What it returns holds only the certificate blocks
 * (anything else pasted into the certificate field is dropped, so a key never lands there) and
 * the key re-encoded as PKCS#8. Error messages never quote the key.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { DockfleetError } from '../../../protocol/errors.ts';
import { HOSTNAME } from '../../../protocol/ingress.ts';

export interface CheckedPair {
  /** The certificate blocks, leaf first, each ending in a newline. */
  certPem: string;
  /** The key as unencrypted PKCS#8 PEM. */
  keyPem: string;
  names: string[];
  notBefore: number;
  notAfter: number;
  fingerprint: string;
  subject: string;
  issuer: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END CERTIFICATE-----/g;

/** A DNS name a certificate may carry: a host name, or `*.` and a host name (one label). */
export function isCertificateName(name: string): boolean {
  return HOSTNAME.test(name.startsWith('*.') ? name.slice(2) : name);
}

function refuse(message: string): never {
  throw new DockfleetError('validation_failed', message);
}

/** The DNS names of a certificate: its subjectAltName DNS entries, or its CN when it has no SAN. */
function namesOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  let raw: string[];
  if (san !== undefined && san !== '') {
    // Node quotes a value holding a separator (`DNS:"a,b"`): no valid host name does.
    raw = san
      .split(', ')
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4));
  } else {
    const cn = cert.subject.split('\n').find((line) => line.startsWith('CN='));
    raw = cn === undefined ? [] : [cn.slice(3)];
  }
  const names = [...new Set(raw.map((n) => n.toLowerCase().replace(/\.$/, '')))];
  for (const name of names) {
    if (!isCertificateName(name)) refuse(`certPem: the certificate names "${name.slice(0, 100)}", which is not a host name or a *. wildcard of one`);
  }
  if (names.length === 0) refuse('certPem: the certificate names no DNS host (no DNS subjectAltName, no CN)');
  return names;
}

function readKey(keyPem: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) refuse('keyPem: not a PEM private key');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyPem)) refuse('keyPem: the key is encrypted; give it decrypted (e.g. openssl pkey -in KEY -out KEY.plain)');
  try {
    return createPrivateKey({ key: keyPem, format: 'pem' });
  } catch {
    return refuse('keyPem: not a readable PEM private key');
  }
}

/** Checks a pair for serving at `now`; throws validation_failed saying what is wrong. */
export function checkPair(certPem: string, keyPem: string, now = Date.now()): CheckedPair {
  const blocks = certPem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) refuse('certPem: no PEM certificate (-----BEGIN CERTIFICATE-----) found');
  const certs = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      return refuse(`certPem: certificate ${i + 1} of ${blocks.length} does not parse`);
    }
  });
  const leaf = certs[0]!;
  const key = readKey(keyPem);
  if (key.type !== 'private') refuse('keyPem: not a private key');
  let matches = false;
  try {
    matches = leaf.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) refuse('keyPem: the key does not belong to the certificate (its public key differs)');
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) refuse("certPem: the certificate's validity dates do not parse");
  if (notAfter <= now) refuse(`certPem: the certificate expired on ${new Date(notAfter).toISOString()}`);
  return {
    certPem: blocks.map((b) => `${b.replace(/\r\n/g, '\n')}\n`).join(''),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
    names: namesOf(leaf),
    notBefore,
    notAfter,
    fingerprint: leaf.fingerprint256,
    subject: leaf.subject.replace(/\n/g, ', '),
    issuer: leaf.issuer.replace(/\n/g, ', '),
  };
}
