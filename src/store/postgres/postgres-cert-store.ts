/**
 * CertStore on PostgreSQL (the edge-certificates table as the SQLite migration makes it,
 * translated). Replacing a host's ACME certificate holds a transaction-scoped advisory lock on
 * the host, so two replicas renewing it at once leave one certificate, as SQLite's single
 * writer does, instead of one of them failing on the host's unique index.
 */
import type { CertificateRecord, CertStore } from '../cert-store.ts';
import { type CertificateRow, certificateValues, certificateFrom } from '../rows/cert-rows.ts';
import type { PgDb, Queryable } from './db.ts';

async function insert(q: Queryable, r: CertificateRecord): Promise<void> {
  await q.query(
    `INSERT INTO edge_certificates (id, source, acme_host, names_json, cert_pem, sealed_key, fingerprint, not_before, not_after, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    certificateValues(r),
  );
}

export class PostgresCertStore implements CertStore {
  readonly kind = 'certs' as const;
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async listCertificates(): Promise<CertificateRecord[]> {
    return (await this.#db.query<CertificateRow>('SELECT * FROM edge_certificates ORDER BY created_at, id COLLATE "C"')).rows.map(certificateFrom);
  }

  async insertCertificate(record: CertificateRecord): Promise<void> {
    await insert(this.#db, record);
  }

  async replaceAcmeCertificate(record: CertificateRecord): Promise<string[]> {
    return this.#db.tx(async (q) => {
      await q.query("SELECT pg_advisory_xact_lock(hashtextextended('dockfleet acme host ' || $1, 0))", [record.acmeHost ?? '']);
      const old = await q.query<{ id: string }>("DELETE FROM edge_certificates WHERE source = 'acme' AND acme_host = $1 RETURNING id", [record.acmeHost]);
      await insert(q, record);
      return old.rows.map((r) => r.id);
    });
  }

  async deleteCertificate(id: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM edge_certificates WHERE id = $1', [id])).rowCount === 1;
  }
}
