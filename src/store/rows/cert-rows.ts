/**
 * The edge_certificates row as both engines return it (SQLite's INTEGER and PostgreSQL's BIGINT
 * both arrive as numbers), the record it maps to, and a record's column values in the order the
 * stores' INSERT lists the columns.
 */
import type { CertificateRecord } from '../cert-store.ts';

export interface CertificateRow {
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

export const certificateFrom = (r: CertificateRow): CertificateRecord => ({
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

/** edge_certificates' columns, in the INSERT's order: id, source, acme_host, names_json, cert_pem, sealed_key,
 * fingerprint, not_before, not_after, created_at. */
export const certificateValues = (r: CertificateRecord): unknown[] => [
  r.id,
  r.source,
  r.acmeHost,
  JSON.stringify(r.names),
  r.certPem,
  r.sealedKey,
  r.fingerprint,
  r.notBefore,
  r.notAfter,
  r.createdAt,
];
