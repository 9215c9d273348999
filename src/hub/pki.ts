/**
 * Hub PKI: a private CA (ECDSA P-256), the hub's TLS server certificate, and client certificates.
 * Certificates are plain PEM in DIR/pki/; the CA's and the server's private keys are sealed there
 * under the hub's master key (secret-box.ts, bound to their purpose), so a copy of DIR alone holds
 * neither. A plain key file from an older hub is sealed in place on first start (atomically).
 */
// tsyringe, a dependency of @peculiar/x509, needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { KeyObject, X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { caDigest } from '../protocol/ca-digest.ts';
import { DockfleetError } from '../protocol/errors.ts';
import type { SecretBox } from './secret-box.ts';

x509.cryptoProvider.set(globalThis.crypto);

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Backdate notBefore a little to tolerate clock skew between hub and agents. */
const SKEW_MS = 5 * 60_000;
/** A stored server certificate expiring sooner than this is re-issued on load. */
const RENEW_BEFORE_MS = 30 * DAY_MS;

export interface HubPki {
  caCertPem: string;
  caKeyPem: string;
  /** Leaf followed by the CA cert (or the supplied chain), so clients receive the chain. */
  serverCertPem: string;
  serverKeyPem: string;
  /** Digest agents pin: the private CA, or the last certificate of a supplied tlsCertFile. */
  caDigest: string;
}

export interface HubPkiOptions {
  hosts: string[];
  /** Seals the CA's and the server's private keys on disk (the hub's master key). */
  secrets: SecretBox;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

export const CA_KEY_FILE = 'ca-key.pem';
export const SERVER_KEY_FILE = 'server-key.pem';
/** What each sealed key is bound to: the CA's key does not open as the server's, or anywhere else. */
export const CA_KEY_CONTEXT = 'hub-pki:ca-key';
const SERVER_KEY_CONTEXT = 'hub-pki:server-key';
const SEALED_PREFIX = 'v1.';
const PEM_PRIVATE_KEY = 'PRIVATE KEY-----';

interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

/** Loads `dir/pki/*`, creating the CA and server certificate on first use. */
export async function loadOrCreateHubPki(dir: string, opts: HubPkiOptions): Promise<HubPki> {
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, { recursive: true, mode: 0o700 });
  const ca = await loadOrCreateCa(pkiDir, opts.secrets);
  const base = { caCertPem: ca.certPem, caKeyPem: ca.keyPem };

  if (opts.tlsCertFile !== undefined || opts.tlsKeyFile !== undefined) {
    if (!opts.tlsCertFile || !opts.tlsKeyFile) throw new Error('tlsCertFile and tlsKeyFile must be given together');
    const chain = splitPemCerts(await readFile(opts.tlsCertFile, 'utf8'));
    const top = chain.at(-1);
    if (!top) throw new Error(`no certificate found in ${opts.tlsCertFile}`);
    const serverKeyPem = await readFile(opts.tlsKeyFile, 'utf8');
    if (!new X509Certificate(chain[0]!).checkPrivateKey(createPrivateKey(serverKeyPem))) {
      throw new Error(`${opts.tlsKeyFile} is not the private key of the first certificate in ${opts.tlsCertFile}`);
    }
    return { ...base, serverCertPem: chain.join(''), serverKeyPem, caDigest: caDigest(top) };
  }

  const server = await loadOrIssueServer(pkiDir, ca, opts.hosts, opts.secrets);
  return { ...base, serverCertPem: server.certPem + ca.certPem, serverKeyPem: server.keyPem, caDigest: caDigest(ca.certPem) };
}

/** Issues a clientAuth certificate signed by the hub CA (default 365 days). */
/** Certifies a client's own ECDSA P-256 public key (SPKI PEM) for clientAuth: the key pair is
 * made by the client, so the hub never holds a user's private key. */
export async function issueClientCert(pki: HubPki, opts: { commonName: string; publicKeyPem: string; days?: number }): Promise<{ certPem: string; serialHex: string; notAfter: Date }> {
  const days = opts.days ?? 365;
  if (!opts.commonName) throw new Error('commonName is required');
  if (opts.commonName.startsWith(REPLICA_CN_PREFIX)) throw new Error('that common name is kept for hub replicas');
  if (!Number.isFinite(days) || days <= 0) throw new Error(`invalid certificate lifetime: ${days} days`);
  const spki = createPublicKey(opts.publicKeyPem).export({ type: 'spki', format: 'der' });
  const publicKey = await globalThis.crypto.subtle.importKey('spki', spki, EC_ALG, true, ['verify']);
  const notAfter = new Date(Date.now() + days * DAY_MS);
  const cert = await signLeaf(pki, {
    commonName: opts.commonName,
    publicKey,
    notAfter,
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  return { certPem: toPem(cert), serialHex: cert.serialNumber.toLowerCase(), notAfter };
}

/** The common name of a replica's peer certificate: node and user names cannot hold a colon, so no agent's or person's certificate can pass for a replica's. */
export const REPLICA_CN_PREFIX = 'dockfleet-replica:';

/** Whether a peer certificate (as TLS reports it) is a hub replica's: both ends of a peer link ask. */
export function isReplicaCertificate(cert: { subject?: { CN?: string | string[] } } | null | undefined): boolean {
  const cn = cert?.subject?.CN;
  const name = Array.isArray(cn) ? cn[0] : cn;
  return typeof name === 'string' && name.startsWith(REPLICA_CN_PREFIX);
}

/**
 * A certificate for one hub replica's peer links (issue 17): serverAuth and clientAuth, so each
 * replica both serves and dials its peers with it; a fresh key pair made here, never stored by
 * the CA. The peer server accepts only this common name prefix.
 */
export async function issueReplicaCert(pki: Pick<HubPki, 'caCertPem' | 'caKeyPem'>, replicaId: string, hosts: string[], days = 30): Promise<{ certPem: string; keyPem: string }> {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(replicaId)) throw new Error(`replica ids are 1–63 lowercase letters, digits or dashes: ${JSON.stringify(replicaId)}`);
  const keys = await generateKeys();
  const cert = await signLeaf(pki, {
    commonName: `${REPLICA_CN_PREFIX}${replicaId}`,
    publicKey: keys.publicKey,
    notAfter: new Date(Date.now() + days * DAY_MS),
    extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]), new x509.SubjectAlternativeNameExtension(sanNames(hosts))],
  });
  return { certPem: toPem(cert), keyPem: exportKeyPem(keys.privateKey) };
}

async function loadOrCreateCa(pkiDir: string, secrets: SecretBox): Promise<KeyPairPem> {
  const certPath = join(pkiDir, 'ca.pem');
  const keyPath = join(pkiDir, CA_KEY_FILE);
  const [certPem, stored] = await Promise.all([readOptional(certPath), readKeyFile(keyPath, CA_KEY_CONTEXT, secrets)]);
  const keyPem = stored?.pem;
  if (certPem !== undefined && stored !== undefined) {
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(stored.pem))) throw new Error(`${keyPath} does not match ${certPath}`);
    if (stored.plain) await writeSealedKey(keyPath, stored.pem, CA_KEY_CONTEXT, secrets);
    return { certPem: cert.toString(), keyPem: stored.pem };
  }
  if (certPem !== undefined || keyPem !== undefined) {
    // A new CA would silently invalidate every enrolled agent's pinned digest.
    throw new Error(`incomplete hub CA in ${pkiDir}: restore both ca.pem and ca-key.pem, or remove both to create a new CA`);
  }

  const keys = await generateKeys();
  const now = Date.now();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + 10);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [`dockfleet hub CA ${randomBytes(4).toString('hex')}`] }],
    notBefore: new Date(now - SKEW_MS),
    notAfter,
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const ca = { certPem: toPem(cert), keyPem: exportKeyPem(keys.privateKey) };
  await writeSealedKey(keyPath, ca.keyPem, CA_KEY_CONTEXT, secrets);
  await writeFile(certPath, ca.certPem, { mode: 0o644 });
  return ca;
}

async function loadOrIssueServer(pkiDir: string, ca: KeyPairPem, hosts: string[], secrets: SecretBox): Promise<KeyPairPem> {
  const certPath = join(pkiDir, 'server.pem');
  const keyPath = join(pkiDir, SERVER_KEY_FILE);
  const wanted = sanNames([...hosts, 'localhost', '127.0.0.1', '::1', hostname()]);
  // The CA opened, so the master key is right: a server key that does not open is only re-issued.
  const [certPem, stored] = await Promise.all([readOptional(certPath), readKeyFile(keyPath, SERVER_KEY_CONTEXT, secrets).catch(() => undefined)]);
  const keyPem = stored?.pem;
  let previous: SanName[] = [];
  if (certPem !== undefined && keyPem !== undefined) {
    const leaf = parseCert(certPem);
    const caCert = new X509Certificate(ca.certPem);
    if (leaf?.checkIssued(caCert) && leaf.verify(caCert.publicKey)) {
      previous = leafSanNames(leaf);
      const fresh = Date.parse(leaf.validTo) - Date.now() > RENEW_BEFORE_MS;
      const covers = wanted.every((n) => previous.some((p) => p.type === n.type && p.value === n.value));
      if (fresh && covers && keyMatches(leaf, keyPem)) {
        if (stored?.plain) await writeSealedKey(keyPath, keyPem, SERVER_KEY_CONTEXT, secrets);
        return { certPem: leaf.toString(), keyPem };
      }
    }
  }

  // Keep names the previous certificate covered so agents configured with an older host keep working.
  const names = sanNames([...wanted, ...previous].map((n) => n.value));
  const keys = await generateKeys();
  const cert = await signLeaf(
    { caCertPem: ca.certPem, caKeyPem: ca.keyPem },
    {
      commonName: 'dockfleet hub',
      publicKey: keys.publicKey,
      notAfter: new Date(Date.now() + 730 * DAY_MS),
      extensions: [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]), new x509.SubjectAlternativeNameExtension(names)],
    },
  );
  const server = { certPem: toPem(cert), keyPem: exportKeyPem(keys.privateKey) };
  await writeSealedKey(keyPath, server.keyPem, SERVER_KEY_CONTEXT, secrets);
  await writeFile(certPath, server.certPem, { mode: 0o644 });
  return server;
}

/** Signs an end-entity certificate with the hub CA; `extensions` adds EKU/SAN. */
async function signLeaf(ca: Pick<HubPki, 'caCertPem' | 'caKeyPem'>, leaf: { commonName: string; publicKey: CryptoKey; notAfter: Date; extensions: x509.Extension[] }): Promise<x509.X509Certificate> {
  const caCert = new x509.X509Certificate(ca.caCertPem);
  const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [leaf.commonName] }],
    issuer: caCert.subjectName,
    notBefore: new Date(Date.now() - SKEW_MS),
    notAfter: leaf.notAfter,
    publicKey: leaf.publicKey,
    signingKey: await importSigningKey(ca.caKeyPem),
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      ...leaf.extensions,
      await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey),
      caSki ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId) : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
}

type SanName = { type: 'dns' | 'ip'; value: string };

/** Classifies, canonicalises and de-duplicates host names for a SAN extension. */
function sanNames(hosts: string[]): SanName[] {
  const out = new Map<string, SanName>();
  for (const raw of hosts) {
    const host = raw.trim().replace(/^\[(.*)\]$/, '$1');
    if (!host) continue;
    const name: SanName = isIP(host) ? { type: 'ip', value: canonicalIp(host) } : { type: 'dns', value: host.toLowerCase().replace(/\.$/, '') };
    out.set(`${name.type}:${name.value}`, name);
  }
  return [...out.values()];
}

function canonicalIp(ip: string): string {
  return isIP(ip) === 6 ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip;
}

function leafSanNames(leaf: X509Certificate): SanName[] {
  const san = new x509.X509Certificate(leaf.raw).getExtension(x509.SubjectAlternativeNameExtension);
  const values = (san?.names.toJSON() ?? []).filter((n) => n.type === 'dns' || n.type === 'ip').map((n) => n.value);
  return sanNames(values);
}

function splitPemCerts(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b).toString());
}

function parseCert(pem: string): X509Certificate | undefined {
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}

function keyMatches(cert: X509Certificate, keyPem: string): boolean {
  try {
    return cert.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return globalThis.crypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('hub CA key must be an ECDSA P-256 key');
  }
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return globalThis.crypto.subtle.importKey('pkcs8', der, EC_ALG, false, ['sign']);
}

function exportKeyPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

function toPem(cert: x509.X509Certificate): string {
  return new X509Certificate(Buffer.from(cert.rawData)).toString();
}

/** 16 random bytes as a positive, non-zero-led DER INTEGER in hex. */
function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A private key file: sealed (this hub's form) or plain PEM (an older hub's, sealed on load). */
async function readKeyFile(path: string, context: string, secrets: SecretBox): Promise<{ pem: string; plain: boolean } | undefined> {
  const text = await readOptional(path);
  if (text === undefined) return undefined;
  if (text.includes(PEM_PRIVATE_KEY)) return { pem: text, plain: true };
  const sealed = text.trim();
  if (!sealed.startsWith(SEALED_PREFIX)) throw new DockfleetError('state_corrupt', `${path} is neither a sealed key nor a PEM private key`);
  try {
    return { pem: secrets.openText(sealed, context), plain: false };
  } catch {
    throw new DockfleetError('master_key_mismatch', `the master key given does not open ${path}: it is not the key this data directory was sealed under. Nothing was changed`);
  }
}

/** Seals a PEM key into PATH (0600): temporary file, fsync, rename over, fsync the folder. */
async function writeSealedKey(path: string, pem: string, context: string, secrets: SecretBox): Promise<void> {
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(`${secrets.seal(pem, context)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => {});
    throw err;
  }
  await chmod(path, 0o600);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** True when DIR's CA key is sealed: DIR was sealed under a master key, so none may be made afresh. */
export async function hubKeysSealed(dataDir: string): Promise<boolean> {
  const text = await readOptional(join(dataDir, 'pki', CA_KEY_FILE));
  return text !== undefined && !text.includes(PEM_PRIVATE_KEY);
}
