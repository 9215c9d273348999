/** CertStore on the hub's SQLite database (the edge-certificates migration's table). */
import type Database from 'better-sqlite3';
import type { CertificateRecord, CertStore } from '../cert-store.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

interface CertificateRow {
  id: string;
  source: string;
  acme_host: string | null;
  names_json: string;
  cert_pem: string;
  sealed_key: string;
  fingerprint: string;
  not_before: number;
  not_after: number;
  created_at: number;
}

const recordFrom = (r: CertificateRow): CertificateRecord => ({
  id: r.id,
  source: r.source as CertificateRecord['source'],
  acmeHost: r.acme_host,
  names: JSON.parse(r.names_json) as string[],
  certPem: r.cert_pem,
  sealedKey: r.sealed_key,
  fingerprint: r.fingerprint,
  notBefore: r.not_before,
  notAfter: r.not_after,
  createdAt: r.created_at,
});

const INSERT = `INSERT INTO edge_certificates (id, source, acme_host, names_json, cert_pem, sealed_key, fingerprint, not_before, not_after, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export class SqliteCertStore implements CertStore {
  readonly kind = 'certs' as const;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async listCertificates(): Promise<CertificateRecord[]> {
    return (this.#sql.get('SELECT * FROM edge_certificates ORDER BY created_at, id').all() as CertificateRow[]).map(recordFrom);
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
    this.#sql.get(INSERT).run(r.id, r.source, r.acmeHost, JSON.stringify(r.names), r.certPem, r.sealedKey, r.fingerprint, r.notBefore, r.notAfter, r.createdAt);
  }
}

translateStorageFailures(SqliteCertStore);
