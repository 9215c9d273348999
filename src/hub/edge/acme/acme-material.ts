/**
 * The certificate material an order needs, made with @peculiar/x509 over WebCrypto: the key and
 * CSR for the certificate being ordered (ECDSA P-256, the host as CN and sole SAN), and the
 * TLS-ALPN-01 challenge certificate (RFC 8737 §3: self-signed, the host as its only SAN, and the
 * critical acmeIdentifier extension holding SHA-256 of the key authorization).
 */
// tsyringe, a dependency of @peculiar/x509, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, X509Certificate, createHash, randomBytes } from 'node:crypto';

x509.cryptoProvider.set(globalThis.crypto);

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** id-pe-acmeIdentifier (RFC 8737 §6.1). */
const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

export interface CertificateRequest {
  /** DER of the PKCS#10 request, base64url, as `finalize` wants it. */
  csr: string;
  keyPem: string;
}

export async function certificateRequest(host: string): Promise<CertificateRequest> {
  const keys = await globalThis.crypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [host] }],
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }])],
  });
  return { csr: Buffer.from(request.rawData).toString('base64url'), keyPem: pemOf(keys.privateKey) };
}

export async function alpnChallengeCertificate(host: string, keyAuthorization: string): Promise<{ cert: string; key: string }> {
  const keys = await globalThis.crypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const digest = createHash('sha256').update(keyAuthorization).digest();
  // extnValue holds the DER of `Authorization ::= OCTET STRING (SIZE (32))`.
  const authorization = Buffer.concat([Buffer.from([0x04, digest.length]), digest]);
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f || 0x01;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [host] }],
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 7 * 86_400_000),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }]), new x509.Extension(ACME_IDENTIFIER_OID, true, authorization)],
  });
  return { cert: new X509Certificate(Buffer.from(cert.rawData)).toString(), key: pemOf(keys.privateKey) };
}

function pemOf(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}
