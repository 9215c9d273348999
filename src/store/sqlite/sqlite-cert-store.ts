/** CertStore on the hub's SQLite database (the edge-certificates migration's table). */
import type Database from 'better-sqlite3';
import type { CertificateRecord, CertStore } from '../cert-store.ts';
import { type CertificateRow, certificateValues, certificateFrom } from '../rows/cert-rows.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

const INSERT = `INSERT INTO edge_certificates (id, source, acme_host, names_json, cert_pem, sealed_key, fingerprint, not_before, not_after, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export class SqliteCertStore implements CertStore {
  readonly kind = 'certs' as const;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async listCertificates(): Promise<CertificateRecord[]> {
    return (this.#sql.get('SELECT * FROM edge_certificates ORDER BY created_at, id').all() as CertificateRow[]).map(certificateFrom);
  }

  async insertCertificate(record: CertificateRecord): Promise<void> {
    this.#insert(record);
  }

  async replaceAcmeCertificate(record: CertificateRecord): Promise<string[]> {
    return this.#sql.db.transaction(() => {
      const old = this.#sql.get("SELECT id FROM edge_certificates WHERE source = 'acme' AND acme_host = ?").all(record.acmeHost) as Array<{ id: string }>;
      this.#sql.get("DELETE FROM edge_certificates WHERE source = 'acme' AND acme_host = ?").run(record.acmeHost);
      this.#insert(record);
      return old.map((r) => r.id);
    })();
  }

  async deleteCertificate(id: string): Promise<boolean> {
    return this.#sql.get('DELETE FROM edge_certificates WHERE id = ?').run(id).changes === 1;
  }

  #insert(r: CertificateRecord): void {
    this.#sql.get(INSERT).run(...certificateValues(r));
  }
}

translateStorageFailures(SqliteCertStore);
