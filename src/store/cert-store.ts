/**
 * The edge's TLS certificates as durable records (hub/edge/certs/): user-supplied ones and the
 * ones ACME issued, one ACME certificate per host at most. Filled in by each database folder
 * (sqlite/sqlite-cert-store.ts). A record never holds a private key in plaintext: `sealedKey`
 * is sealed by the hub's secret box, bound to the record's id. Methods reject with
 * `storage_full` when the storage cannot take a write.
 */

export type CertificateSource = 'supplied' | 'acme';

export interface CertificateRecord {
  id: string;
  source: CertificateSource;
  /** The host an ACME certificate was ordered for; null for a supplied one. */
  acmeHost: string | null;
  /** The DNS names it covers, lowercase (`*.example.com` for a wildcard). */
  names: string[];
  /** Leaf first, then the chain (PEM certificates only). */
  certPem: string;
  /** The private key (PEM), sealed by the secret box with the context `edge-certificate:<id>`. */
  sealedKey: string;
  /** SHA-256 of the leaf (colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  createdAt: number;
}

export interface CertStore {
  listCertificates(): Promise<CertificateRecord[]>;
  insertCertificate(record: CertificateRecord): Promise<void>;
  /** Stores an ACME certificate for `record.acmeHost`, removing that host's previous one in the
   * same transaction; returns the ids it removed. */
  replaceAcmeCertificate(record: CertificateRecord): Promise<string[]>;
  /** False when there was no such certificate. */
  deleteCertificate(id: string): Promise<boolean>;
}
