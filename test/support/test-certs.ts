/** Test certificate authorities and leaf certificates (ECDSA P-256, @peculiar/x509), for
 * certificates a user would bring to the edge: exact names, wildcards, expired ones, any dates. */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, X509Certificate, randomBytes } from 'node:crypto';

x509.cryptoProvider.set(globalThis.crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TestCa {
  certPem: string;
  name: string;
  keys: CryptoKeyPair;
}

export interface TestLeaf {
  /** Leaf then the CA, as a server sends it. */
  certPem: string;
  keyPem: string;
  serial: string;
}

const serial = (): string => `01${randomBytes(8).toString('hex')}`;

function keyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

export async function makeCa(name = `test CA ${randomBytes(3).toString('hex')}`): Promise<TestCa> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    keys,
    signingAlgorithm: SIGN,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { certPem: cert.toString('pem'), name, keys };
}

/** A server certificate signed by CA for NAMES (DNS SANs; none: a CN-only certificate named `cn`). */
export async function makeLeaf(ca: TestCa, opts: { names: string[]; cn?: string; notBefore?: Date; notAfter?: Date }): Promise<TestLeaf> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const number = serial();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: number,
    subject: `CN=${opts.cn ?? opts.names[0] ?? 'no name'}`,
    issuer: `CN=${ca.name}`,
    notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
    notAfter: opts.notAfter ?? new Date(Date.now() + 90 * DAY),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ...(opts.names.length > 0 ? [new x509.SubjectAlternativeNameExtension(opts.names.map((value) => ({ type: 'dns' as const, value })))] : []),
    ],
  });
  return { certPem: `${cert.toString('pem')}\n${ca.certPem}\n`, keyPem: keyPem(keys.privateKey), serial: number };
}

/** A fresh unrelated private key (PEM), for a key that does not match. */
export async function makeKey(): Promise<string> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  return keyPem(keys.privateKey);
}

/** A TLS-ALPN-01 challenge certificate (RFC 8737 3): self-signed for HOST, with the critical
 * acmeIdentifier extension holding the SHA-256 of a key authorization. */
export async function makeAlpnChallenge(host: string, keyAuthorization: string): Promise<{ cert: string; key: string; fingerprint: string }> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const digest = Buffer.from(await crypto.subtle.digest('SHA-256', Buffer.from(keyAuthorization)));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${host}`,
    keys,
    signingAlgorithm: SIGN,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 7 * DAY),
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }]), new x509.Extension('1.3.6.1.5.5.7.1.31', true, Buffer.concat([Buffer.from([0x04, 0x20]), digest]))],
  });
  const pem = cert.toString('pem');
  return { cert: pem, key: keyPem(keys.privateKey), fingerprint: new X509Certificate(pem).fingerprint256 };
}
