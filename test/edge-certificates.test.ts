/** Certificates a user supplies to the edge (real hub, real TLS on 127.0.0.1, real SQLite):
 * exact and wildcard certificates served by SNI to a client that trusts only their own CA,
 * from the next handshake on; exact before wildcard before ACME; removal falls back; garbled,
 * mismatched and expired pairs refused with a clear reason and nothing stored; keys never in the
 * database file in the clear, nor in any API answer, log line or audit row; everything kept
 * across a restart; the routes view's certificate states; and `dockfleet certs add|ls|rm`. */
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startTestHub, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { makeCa, makeKey, makeLeaf, type TestCa, type TestLeaf } from './support/test-certs.ts';

const DAY = 86_400_000;
let dir: string;
let hub: TestHub;
let caA: TestCa;
let caB: TestCa;
const logLines: string[] = [];
/** Every key this test hands to the hub: none may show up anywhere but in TLS. */
const keysGiven: string[] = [];

function captureLogger(): pino.Logger {
  return pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, done) {
        logLines.push(String(chunk));
        done();
      },
    }),
  );
}

async function startHub(): Promise<TestHub> {
  return startTestHub({ dataDir: join(dir, 'hub'), edgeListen: '127.0.0.1:0', log: captureLogger() });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-certs-'));
  hub = await startHub();
  [caA, caB] = await Promise.all([makeCa('edge test CA A'), makeCa('edge test CA B')]);
});

after(async () => {
  await hub?.stop({ keepData: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

const fingerprintOf = (leaf: TestLeaf): string => new X509Certificate(leaf.certPem).fingerprint256;
/** Certificates made in one test and checked again in a later one. */
const kept: { wildcard?: TestLeaf; exact?: TestLeaf } = {};

/** The certificate the edge serves for SERVERNAME, verified against CA (throws when it does not
 * verify); without a CA, whatever it serves, unverified. */
function served(servername: string, ca?: TestCa): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const trust = ca === undefined ? { rejectUnauthorized: false } : { ca: ca.certPem };
    const socket = tls.connect({ host: '127.0.0.1', port: hub.edgePort!, servername, ...trust, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerX509Certificate()!;
      socket.destroy();
      resolve(cert);
    });
    socket.once('error', reject);
  });
}

async function add(leaf: TestLeaf, token?: string): Promise<{ status: number; json: any }> {
  keysGiven.push(leaf.keyPem);
  return hub.api('POST', '/api/v1/certificates', { certPem: leaf.certPem, keyPem: leaf.keyPem }, token);
}

/** The base64 body of a PEM key, in lines: what a leak would contain. */
function keyLines(keyPem: string): string[] {
  return keyPem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----'));
}

test('an exact certificate is served by SNI from the next handshake, and the answer carries no key', async () => {
  const leaf = await makeLeaf(caA, { names: ['shop.test'] });
  await assert.rejects(served('shop.test', caA), "before: the hub's own certificate does not verify against CA A");
  const res = await add(leaf);
  assert.equal(res.status, 201, JSON.stringify(res.json));
  assert.deepEqual(Object.keys(res.json).sort(), ['acmeHost', 'createdAt', 'fingerprint', 'id', 'issuer', 'names', 'notAfter', 'notBefore', 'source']);
  assert.deepEqual(res.json.names, ['shop.test']);
  assert.equal(res.json.source, 'supplied');
  assert.equal(res.json.fingerprint, fingerprintOf(leaf));
  assert.doesNotMatch(JSON.stringify(res.json), /PRIVATE KEY/);
  const cert = await served('shop.test', caA);
  assert.equal(cert.fingerprint256, fingerprintOf(leaf));
  assert.equal(hub.edgeCertificates.tlsOf('shop.test').state, 'supplied');
  assert.equal(hub.edgeCertificates.tlsOf('shop.test').notAfter, res.json.notAfter);
});

test('a wildcard covers exactly one label; an exact certificate comes before it', async () => {
  const wild = await makeLeaf(caB, { names: ['*.apps.test'] });
  const exact = await makeLeaf(caA, { names: ['one.apps.test'] });
  kept.wildcard = wild;
  kept.exact = exact;
  assert.equal((await add(wild)).status, 201);
  assert.equal((await served('two.apps.test', caB)).fingerprint256, fingerprintOf(wild));
  assert.equal((await served('TWO.Apps.Test', caB)).fingerprint256, fingerprintOf(wild), 'SNI is matched without case');
  await assert.rejects(served('deep.two.apps.test', caB), 'a wildcard covers one label only');
  await assert.rejects(served('apps.test', caB), 'a wildcard does not cover its own domain');
  assert.equal((await served('one.apps.test', caB)).fingerprint256, fingerprintOf(wild), 'the wildcard, before the exact one exists');
  assert.equal((await add(exact)).status, 201);
  assert.equal((await served('one.apps.test', caA)).fingerprint256, fingerprintOf(exact), 'the exact certificate wins');
  assert.equal((await served('two.apps.test', caB)).fingerprint256, fingerprintOf(wild));
});

test("supplied before ACME; removing a certificate falls back at once: exact, then wildcard, then ACME, then the hub's own", async () => {
  const acme = await makeLeaf(caA, { names: ['three.apps.test'] });
  const exact = await makeLeaf(caA, { names: ['three.apps.test'] });
  keysGiven.push(acme.keyPem);
  await hub.edgeCertificates.putAcme('three.apps.test', acme.certPem, acme.keyPem);
  const wildId = (await hub.api('GET', '/api/v1/certificates')).json.find((c: any) => c.names.includes('*.apps.test')).id as string;
  assert.notEqual((await served('three.apps.test', caB)).fingerprint256, fingerprintOf(acme), 'a supplied wildcard comes before ACME');
  const exactId = (await add(exact)).json.id as string;
  assert.equal((await served('three.apps.test', caA)).fingerprint256, fingerprintOf(exact));
  assert.equal((await hub.api('DELETE', `/api/v1/certificates/${exactId}`)).status, 200);
  assert.equal((await served('three.apps.test', caB)).fingerprint256, fingerprintOf(kept.wildcard!), 'the wildcard once the exact one is gone');
  assert.equal((await hub.api('DELETE', `/api/v1/certificates/${wildId}`)).status, 200);
  assert.equal((await served('three.apps.test', caA)).fingerprint256, fingerprintOf(acme), 'ACME once no supplied certificate covers it');
  assert.equal(hub.edgeCertificates.tlsOf('three.apps.test').state, 'valid');
  await assert.rejects(served('two.apps.test', caB), 'the wildcard is gone');
  assert.match((await served('two.apps.test')).issuer, /dockfleet hub CA/, "the hub's own certificate when nothing covers the name");
  const list = (await hub.api('GET', '/api/v1/certificates')).json as Array<{ source: string; acmeHost: string | null }>;
  assert.ok(
    list.some((c) => c.source === 'acme' && c.acmeHost === 'three.apps.test'),
    'the list includes ACME certificates',
  );
  assert.equal((await hub.api('DELETE', `/api/v1/certificates/${exactId}`)).json.error.code, 'not_found');
});

test('garbled, mismatched, expired and encrypted pairs are refused with a clear reason, and nothing is stored', async () => {
  const before = (await hub.api('GET', '/api/v1/certificates')).json.length as number;
  const good = await makeLeaf(caA, { names: ['refused.test'] });
  const expired = await makeLeaf(caA, { names: ['refused.test'], notBefore: new Date(Date.now() - 100 * DAY), notAfter: new Date(Date.now() - DAY) });
  const other = await makeKey();
  const ipOnly = await makeLeaf(caA, { names: [], cn: 'not a host name' });
  const cases: Array<[string, { certPem: string; keyPem: string }, RegExp]> = [
    ['garbage certificate', { certPem: 'hello', keyPem: good.keyPem }, /certPem: no PEM certificate/],
    ['garbled certificate', { certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', keyPem: good.keyPem }, /certPem: certificate 1 of 1 does not parse/],
    ['garbage key', { certPem: good.certPem, keyPem: 'hello' }, /keyPem: not a PEM private key/],
    ['key of another certificate', { certPem: good.certPem, keyPem: other }, /keyPem: the key does not belong to the certificate/],
    ['expired', { certPem: expired.certPem, keyPem: expired.keyPem }, /certPem: the certificate expired on \d{4}-/],
    ['encrypted key', { certPem: good.certPem, keyPem: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n' }, /keyPem: the key is encrypted/],
    ['no host name', { certPem: ipOnly.certPem, keyPem: ipOnly.keyPem }, /certPem: the certificate names "not a host name"/],
  ];
  keysGiven.push(good.keyPem, expired.keyPem, other, ipOnly.keyPem);
  for (const [what, body, reason] of cases) {
    const res = await hub.api('POST', '/api/v1/certificates', body);
    assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.json)}`);
    assert.equal(res.json.error.code, 'validation_failed', what);
    assert.match(res.json.error.message, reason, what);
    assert.doesNotMatch(res.json.error.message, /PRIVATE KEY|MII/, `${what}: the error quotes the key`);
  }
  assert.equal((await hub.api('POST', '/api/v1/certificates', { certPem: good.certPem })).json.error.code, 'validation_failed');
  assert.equal((await hub.api('POST', '/api/v1/certificates', 'not json')).json.error.code, 'bad_request');
  assert.equal((await hub.api('GET', '/api/v1/certificates')).json.length, before, 'a refused pair was stored');
  // The same certificate twice: refused, naming the one stored.
  const first = await add(good);
  const again = await add(good);
  assert.equal(again.status, 409);
  assert.match(again.json.error.message, new RegExp(first.json.id));
});

test('only an admin adds or removes; anyone signed in lists', async () => {
  const viewer = await hub.api('POST', '/api/v1/users', { name: 'cert-viewer', role: 'viewer' });
  assert.equal(viewer.status, 201);
  const leaf = await makeLeaf(caA, { names: ['viewer.test'] });
  const res = await add(leaf, viewer.json.token);
  assert.equal(res.status, 403);
  assert.equal((await hub.api('GET', '/api/v1/certificates', undefined, viewer.json.token)).status, 200);
  const id = (await hub.api('GET', '/api/v1/certificates')).json[0].id as string;
  assert.equal((await hub.api('DELETE', `/api/v1/certificates/${id}`, undefined, viewer.json.token)).status, 403);
  assert.equal((await hub.api('GET', '/api/v1/certificates', undefined, '')).status, 401);
});

test('the certificate states the routes view shows: supplied, valid, expiring, pending, failed (with why), none', async () => {
  const book = hub.edgeCertificates;
  assert.deepEqual(book.tlsOf('nothing.test'), { state: 'none', notAfter: null, error: null });
  const young = await makeLeaf(caA, { names: ['young.test'] });
  const old = await makeLeaf(caA, { names: ['old.test'], notBefore: new Date(Date.now() - 70 * DAY), notAfter: new Date(Date.now() + 20 * DAY) });
  keysGiven.push(young.keyPem, old.keyPem);
  await book.putAcme('young.test', young.certPem, young.keyPem);
  await book.putAcme('old.test', old.certPem, old.keyPem);
  assert.equal(book.tlsOf('young.test').state, 'valid');
  assert.equal(book.tlsOf('old.test').state, 'expiring', 'less than a third of its lifetime left');
  book.setAcmeState('young.test', { state: 'pending', error: null });
  assert.equal(book.tlsOf('young.test').state, 'pending');
  book.setAcmeState('young.test', { state: 'failed', error: 'urn:ietf:params:acme:error:connection: refused' });
  const failed = book.tlsOf('young.test');
  assert.equal(failed.state, 'failed');
  assert.equal(failed.error, 'urn:ietf:params:acme:error:connection: refused');
  assert.equal(failed.notAfter, new Date(new X509Certificate(young.certPem).validTo).toISOString(), "a failed host keeps its old certificate's notAfter");
  assert.equal((await served('young.test', caA)).fingerprint256, fingerprintOf(young), 'and keeps serving it');
  book.setAcmeState('young.test', null);
  assert.equal(book.tlsOf('young.test').state, 'valid');
  await assert.rejects(book.putAcme('young.test', old.certPem, old.keyPem), /does not name young\.test/);
});

test("dockfleet certs add, ls and rm (on the hub's machine, --data)", async () => {
  const leaf = await makeLeaf(caB, { names: ['cli.test', '*.cli.test'] });
  keysGiven.push(leaf.keyPem);
  await writeFile(join(dir, 'cli-cert.pem'), leaf.certPem);
  await writeFile(join(dir, 'cli-key.pem'), leaf.keyPem, { mode: 0o600 });
  const cli = async (...args: string[]): Promise<{ code: number | null; out: string; err: string }> => {
    const p = spawnDockfleet(['certs', ...args, '--data', hub.dataDir]);
    const { code } = await p.exited;
    return { code, out: p.stdout(), err: p.stderr() };
  };
  const added = await cli('add', '--cert', join(dir, 'cli-cert.pem'), '--key', join(dir, 'cli-key.pem'));
  assert.equal(added.code, 0, added.err);
  const id = added.out.trim().split('\n').at(-1)!;
  assert.match(id, /^[0-9a-f]{12}$/);
  assert.equal((await served('www.cli.test', caB)).fingerprint256, fingerprintOf(leaf));
  const listed = await cli('ls', '--json');
  assert.equal(listed.code, 0, listed.err);
  const mine = (JSON.parse(listed.out) as Array<{ id: string; names: string[] }>).find((c) => c.id === id);
  assert.deepEqual(mine?.names, ['cli.test', '*.cli.test']);
  const human = await cli('ls');
  assert.match(human.out, new RegExp(`^${id}\\s+supplied\\s+cli\\.test,\\*\\.cli\\.test`, 'm'));
  const mismatched = await cli('add', '--cert', join(dir, 'cli-cert.pem'), '--key', join(dir, 'missing.pem'));
  assert.equal(mismatched.code, 1);
  assert.match(mismatched.err, /cannot read the key file/);
  const removed = await cli('rm', id);
  assert.equal(removed.code, 0, removed.err);
  await assert.rejects(served('www.cli.test', caB));
  const again = await cli('rm', id);
  assert.equal(again.code, 1);
  assert.match(again.err, /no edge certificate .*\[not_found\]/);
  assert.equal((await cli('add', '--cert', join(dir, 'cli-cert.pem'))).code, 2, 'a usage error without --key');
});

test('changes are audited (method and path, never the body)', async () => {
  const rows = (await hub.api('GET', '/api/v1/audit?limit=200')).json as Array<{ method: string; path: string; status: number | null }>;
  assert.ok(rows.some((r) => r.method === 'POST' && r.path === '/api/v1/certificates' && r.status === 201));
  assert.ok(rows.some((r) => r.method === 'DELETE' && r.path.startsWith('/api/v1/certificates/') && r.status === 200));
});

test('certificates survive a restart, and no key is in the database file, an answer or a log line in the clear', async () => {
  const beforeList = (await hub.api('GET', '/api/v1/certificates')).json as Array<{ id: string }>;
  await hub.stop({ keepData: true });
  hub = await startHub();
  const afterList = (await hub.api('GET', '/api/v1/certificates')).json as Array<{ id: string }>;
  assert.deepEqual(
    afterList.map((c) => c.id),
    beforeList.map((c) => c.id),
  );
  assert.equal((await served('one.apps.test', caA)).fingerprint256, fingerprintOf(kept.exact!));
  assert.equal((await served('shop.test', caA)).subject, 'CN=shop.test');
  // Everything the hub wrote to its database, WAL included, and every answer and log line.
  const files = (await readdir(hub.dataDir)).filter((f) => f.startsWith('dockfleet.db'));
  const bytes = Buffer.concat(await Promise.all(files.map((f) => readFile(join(hub.dataDir, f)))));
  const text = bytes.toString('latin1');
  const answers = JSON.stringify(afterList) + JSON.stringify((await hub.api('GET', '/api/v1/audit?limit=500')).json);
  const logs = logLines.join('');
  assert.ok(logs.includes('edge certificate added'), 'the log capture works');
  assert.doesNotMatch(text, /PRIVATE KEY/);
  for (const key of keysGiven) {
    const scalar = Buffer.from(createPrivateKey(key).export({ format: 'jwk' }).d!, 'base64url');
    assert.equal(bytes.includes(scalar), false, 'a private scalar is in the database file');
    assert.equal(text.includes(scalar.toString('base64')) || text.includes(scalar.toString('base64url')), false, 'a private scalar is in the database file (base64)');
    for (const line of keyLines(key)) {
      assert.equal(text.includes(line), false, 'a key line is in the database file');
      assert.equal(answers.includes(line), false, 'a key line is in an API answer');
      assert.equal(logs.includes(line), false, 'a key line is in the log');
    }
  }
});
