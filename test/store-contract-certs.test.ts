/** The edge certificate store's contract, on SQLite and on PostgreSQL: insert, list order,
 * one ACME certificate per host (replaced in one transaction), delete; and on PostgreSQL,
 * replicas renewing one host at once leave one certificate. */
import assert from 'node:assert/strict';
import type { CertificateRecord, CertStore } from '../src/store/cert-store.ts';
import { PostgresCertStore } from '../src/store/postgres/postgres-cert-store.ts';
import { SqliteCertStore } from '../src/store/sqlite/sqlite-cert-store.ts';
import { storeContract } from './support/store-contract.ts';

const certs = storeContract<CertStore>('certs', { sqlite: (db) => new SqliteCertStore(db), postgres: (db) => new PostgresCertStore(db) });

let serial = 0;
function cert(over: Partial<CertificateRecord> = {}): CertificateRecord {
  serial++;
  return {
    id: `cert_${String(serial).padStart(4, '0')}`,
    source: 'supplied',
    acmeHost: null,
    names: ['*.example.com', 'example.com'],
    certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    sealedKey: `sealed-${serial}`,
    fingerprint: 'AB:CD',
    notBefore: 1_700_000_000_000,
    notAfter: 1_800_000_000_000,
    createdAt: 5_000 - serial,
    ...over,
  };
}
const acme = (host: string, createdAt: number): CertificateRecord => cert({ source: 'acme', acmeHost: host, names: [host], createdAt });

certs.test('insert and list: every field back, oldest first, ties by id; a taken id is refused', async (store) => {
  assert.deepEqual(await store.listCertificates(), []);
  const a = cert({ createdAt: 200 });
  const b = cert({ createdAt: 100 });
  const c = cert({ createdAt: 200, id: 'cert_0000' });
  for (const x of [a, b, c]) await store.insertCertificate(x);
  assert.deepEqual(await store.listCertificates(), [b, c, a]);
  await assert.rejects(store.insertCertificate(cert({ id: a.id })));
});

certs.test('the schema holds: an ACME certificate names its host, a supplied one does not, one ACME certificate per host', async (store) => {
  await assert.rejects(store.insertCertificate(cert({ source: 'acme', acmeHost: null })));
  await assert.rejects(store.insertCertificate(cert({ source: 'supplied', acmeHost: 'a.example.com' })));
  await store.insertCertificate(acme('a.example.com', 1));
  await assert.rejects(store.insertCertificate(acme('a.example.com', 2)));
});

certs.test("replaceAcmeCertificate: removes that host's previous one only and says which", async (store) => {
  const supplied = cert({ createdAt: 1 });
  const first = acme('a.example.com', 2);
  const other = acme('b.example.com', 3);
  for (const x of [supplied, first, other]) await store.insertCertificate(x);
  const renewed = acme('a.example.com', 4);
  assert.deepEqual(await store.replaceAcmeCertificate(renewed), [first.id]);
  assert.deepEqual(await store.listCertificates(), [supplied, other, renewed]);
  const fresh = acme('c.example.com', 5);
  assert.deepEqual(await store.replaceAcmeCertificate(fresh), [], 'a first certificate replaces nothing');
  assert.equal((await store.listCertificates()).length, 4);
});

certs.test('deleteCertificate: true once, false for an unknown id', async (store) => {
  const a = cert();
  await store.insertCertificate(a);
  assert.equal(await store.deleteCertificate(a.id), true);
  assert.equal(await store.deleteCertificate(a.id), false);
  assert.deepEqual(await store.listCertificates(), []);
});

certs.postgresTest('replicas renewing one host at once leave one certificate, none failing', async ({ store, replica }) => {
  const stores = [store, replica(), replica()];
  await Promise.all(stores.map((s) => s.listCertificates())); // every pool connected: the renewals overlap
  await store.insertCertificate(acme('a.example.com', 1));
  for (let round = 0; round < 5; round++) {
    const renewals = stores.map((_, i) => acme('a.example.com', 10 + round * 10 + i));
    const removed = await Promise.all(stores.map((s, i) => s.replaceAcmeCertificate(renewals[i] as CertificateRecord)));
    assert.equal(removed.flat().length, 3, 'each renewal replaced the one before it');
    const left = await store.listCertificates();
    assert.equal(left.length, 1);
  }
});
