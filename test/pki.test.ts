import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { KeyObject, X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { issueClientCert, loadOrCreateHubPki } from '../src/hub/pki.ts';
import type { HubPki } from '../src/hub/pki.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import type * as X509 from '@peculiar/x509';
import { caDigest, peerChainDer, verifyChainToPinnedCa } from '../src/protocol/ca-digest.ts';

/** Seals the test CAs' private keys on disk, as the hub's master key does. */
const secrets = new SecretBox(Buffer.alloc(32, 1));

const tmpDirs: string[] = [];
const servers: Server[] = [];
let handled = 0;

interface PeerInfo {
  authorized: boolean;
  authorizationError: string | null;
  cn: string | null;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-pki-'));
  tmpDirs.push(dir);
  return dir;
}

async function serve(pki: HubPki, extra: Parameters<typeof createServer>[0] = {}): Promise<number> {
  const server = createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem, ...extra }, (req, res) => {
    const sock = req.socket as TLSSocket;
    handled++;
    const cn = sock.getPeerCertificate().subject?.CN;
    const info: PeerInfo = {
      authorized: sock.authorized,
      authorizationError: sock.authorizationError ? String(sock.authorizationError) : null,
      cn: cn === undefined ? null : String(cn),
    };
    res.end(JSON.stringify(info));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Connects without verification and returns the peer chain (leaf first). */
async function fetchChain(port: number): Promise<Buffer[]> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  const chain = peerChainDer(socket);
  socket.destroy();
  return chain;
}

function get(port: number, opts: { ca: string; cert?: string; key?: string }): Promise<PeerInfo> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(JSON.parse(body) as PeerInfo));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A self-signed clientAuth certificate (shim for @peculiar/x509 is installed by pki.ts, imported above). */
async function selfSignedClientCert(commonName: string): Promise<{ cert: string; key: string }> {
  const x509: typeof X509 = await import('@peculiar/x509');
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
  });
  const key = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { cert: cert.toString('pem'), key };
}

test.after(async () => {
  for (const s of servers) s.close();
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

const dir = await tempDir();
const pki = await loadOrCreateHubPki(dir, { hosts: ['hub.example.test', '10.1.2.3'], secrets });
const port = await serve(pki);
const otherPki = await loadOrCreateHubPki(await tempDir(), { hosts: [], secrets });
const otherPort = await serve(otherPki);

test('server chain verifies against the CA via normal TLS', async () => {
  const socket = connect({ host: '127.0.0.1', port, ca: pki.caCertPem, servername: 'localhost' });
  await once(socket, 'secureConnect');
  assert.equal(socket.authorized, true);
  socket.destroy();
});

test('served chain is leaf then CA; caDigest is the CA digest', async () => {
  const chain = await fetchChain(port);
  assert.equal(chain.length, 2);
  assert.equal(caDigest(chain[1]!), pki.caDigest);
  assert.equal(caDigest(pki.caCertPem), pki.caDigest);
  assert.match(pki.caDigest, /^[0-9a-f]{64}$/);
  assert.match(new X509Certificate(pki.caCertPem).subject, /^CN=dockfleet hub CA [0-9a-f]+$/);
});

test('verifyChainToPinnedCa accepts the pinned CA and returns its PEM', async () => {
  const chain = await fetchChain(port);
  for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]', 'hub.example.test', 'HUB.example.test', '10.1.2.3']) {
    const { caPem } = verifyChainToPinnedCa(chain, pki.caDigest, host);
    assert.equal(caPem, pki.caCertPem);
  }
  assert.equal(verifyChainToPinnedCa(chain, pki.caDigest.toUpperCase(), '127.0.0.1').caPem, pki.caCertPem);
});

test('verifyChainToPinnedCa rejects a wrong digest', async () => {
  const chain = await fetchChain(port);
  assert.throws(() => verifyChainToPinnedCa(chain, 'ab'.repeat(32), '127.0.0.1'), /hub CA does not match the enrollment code's digest/);
});

test("verifyChainToPinnedCa rejects a different hub presented with the first hub's digest", async () => {
  const chain = await fetchChain(otherPort);
  assert.throws(() => verifyChainToPinnedCa(chain, pki.caDigest, '127.0.0.1'), /hub CA does not match/);
  // A foreign leaf spliced in front of the pinned CA is caught by the signature check.
  const [otherLeaf] = chain;
  const [, ourCa] = await fetchChain(port);
  assert.throws(() => verifyChainToPinnedCa([otherLeaf!, ourCa!], pki.caDigest, '127.0.0.1'), /hub certificate is not signed by the pinned CA/);
});

test('verifyChainToPinnedCa rejects hosts outside the SANs', async () => {
  const chain = await fetchChain(port);
  assert.throws(() => verifyChainToPinnedCa(chain, pki.caDigest, 'evil.example.test'), /hub certificate does not cover host evil\.example\.test/);
  assert.throws(() => verifyChainToPinnedCa(chain, pki.caDigest, '10.9.9.9'), /does not cover host 10\.9\.9\.9/);
});

test('verifyChainToPinnedCa rejects an expired chain', async (t) => {
  const chain = await fetchChain(port);
  const later = Date.now() + 3 * 365 * 86_400_000;
  t.mock.method(Date, 'now', () => later);
  assert.throws(() => verifyChainToPinnedCa(chain, pki.caDigest, '127.0.0.1'), /hub certificate expired/);
});

test('reload from disk keeps the CA; key files are 0600', async () => {
  const again = await loadOrCreateHubPki(dir, { hosts: ['hub.example.test'], secrets });
  assert.equal(again.caDigest, pki.caDigest);
  assert.equal(again.serverCertPem, pki.serverCertPem, 'server cert reused when hosts are covered');
  assert.equal(again.caKeyPem, pki.caKeyPem);
  for (const f of ['ca-key.pem', 'server-key.pem']) {
    assert.equal((await stat(join(dir, 'pki', f))).mode & 0o777, 0o600, f);
  }
});

test('a new host re-issues the server cert under the same CA', async () => {
  const d = await tempDir();
  const first = await loadOrCreateHubPki(d, { hosts: ['a.example.test'], secrets });
  const second = await loadOrCreateHubPki(d, { hosts: ['b.example.test', '192.0.2.7'], secrets });
  assert.equal(second.caDigest, first.caDigest);
  assert.notEqual(second.serverCertPem, first.serverCertPem);
  const leaf = new X509Certificate(second.serverCertPem);
  assert.ok(leaf.checkHost('b.example.test'));
  assert.ok(leaf.checkHost('a.example.test'), 'previously covered names are kept');
  assert.ok(leaf.checkIP('192.0.2.7'));
  assert.ok(leaf.verify(new X509Certificate(first.caCertPem).publicKey));
});

test('tlsCertFile/tlsKeyFile: served as-is, digest of the last certificate, private CA still created', async () => {
  const d = await tempDir();
  const certFile = join(d, 'fullchain.pem');
  const keyFile = join(d, 'privkey.pem');
  await writeFile(certFile, otherPki.serverCertPem);
  await writeFile(keyFile, otherPki.serverKeyPem);
  const custom = await loadOrCreateHubPki(d, { hosts: [], tlsCertFile: certFile, tlsKeyFile: keyFile, secrets });
  assert.equal(custom.serverCertPem, otherPki.serverCertPem);
  assert.equal(custom.caDigest, otherPki.caDigest);
  assert.notEqual(caDigest(custom.caCertPem), custom.caDigest);
  await stat(join(d, 'pki', 'ca-key.pem'));
});

/** A client makes its own key pair; the hub certifies only the public half. */
async function clientWithOwnKey(hub: HubPki, commonName: string, days?: number) {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const issued = await issueClientCert(hub, {
    commonName,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ...(days ? { days } : {}),
  });
  return { ...issued, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

test('issueClientCert: accepted by a requestCert server; self-signed client rejected', async () => {
  const client = await clientWithOwnKey(pki, 'alice');
  assert.match(client.serialHex, /^[0-9a-f]+$/);
  const cert = new X509Certificate(client.certPem);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(cert.serialNumber.toLowerCase(), client.serialHex);
  const days = (Date.parse(cert.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 364 && days <= 365, `lifetime ${days}`);

  const mtlsPort = await serve(pki, { requestCert: true, rejectUnauthorized: true, ca: pki.caCertPem });
  const ok = await get(mtlsPort, { ca: pki.caCertPem, cert: client.certPem, key: client.keyPem });
  assert.deepEqual(ok, { authorized: true, authorizationError: null, cn: 'alice' });

  // A lenient server shows why each bad client is unauthorized; the strict one drops the connection.
  const lenientPort = await serve(pki, { requestCert: true, rejectUnauthorized: false, ca: pki.caCertPem });
  const foreign = await clientWithOwnKey(otherPki, 'mallory', 1);
  const bad: Array<[string, { cert?: string; key?: string }, string]> = [
    ['self-signed', await selfSignedClientCert('alice'), 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['foreign CA', { cert: foreign.certPem, key: foreign.keyPem }, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  ];
  for (const [label, creds, code] of bad) {
    const seen = await get(lenientPort, { ca: pki.caCertPem, ...creds });
    assert.equal(seen.authorized, false, label);
    assert.equal(seen.authorizationError, code, label);
    const before = handled;
    await assert.rejects(get(mtlsPort, { ca: pki.caCertPem, ...creds }), label);
    assert.equal(handled, before, `${label}: strict server must not handle the request`);
  }
  await assert.rejects(get(mtlsPort, { ca: pki.caCertPem }), 'no client certificate');
});
