/**
 * The edge's certificates, as the rest of the hub sees them: which certificate to present for a
 * server name, and where ACME puts what it obtained. Implemented by EdgeCertificates
 * (edge-certificates.ts: kept in the hub's store, private keys sealed with the hub's SecretBox),
 * used by the edge listener (SNI), the ACME manager (acme/) and the routes view (certificate state).
 *
 * Precedence for a server name: a supplied certificate naming it exactly, then a supplied
 * wildcard covering it (`*.example.com` covers one label), then an ACME certificate for it.
 */
import type { RouteView } from '../../../protocol/ingress.ts';

export type RouteTls = RouteView['tls'];
export interface PemPair {
  cert: string;
  key: string;
}

/** What ACME last did for a host (shown in the routes view; the served certificate stays until a new one is stored). */
export interface AcmeHostState {
  state: 'pending' | 'failed';
  /** Why it failed (the ACME server's problem detail, or the network error), shown to operators; never secret. */
  error: string | null;
}

export interface AcmeCertificateRecord {
  host: string;
  /** Leaf first, then the chain, as the ACME server sent it. */
  certPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface EdgeCertificateBook {
  /** The pair to present for SNI `serverName` (lowercase), or null to fall back to the hub's own. */
  forServerName(serverName: string): PemPair | null;
  /** True when a supplied certificate (exact or wildcard) covers HOST: ACME leaves it alone. */
  coveredBySupplied(host: string): boolean;
  /** The ACME certificate stored for HOST (no key), or null. */
  acmeCertificate(host: string): AcmeCertificateRecord | null;
  /** Stores a certificate ACME issued for HOST (replacing the previous one) and clears its pending/failed state. */
  putAcme(host: string, certPem: string, keyPem: string): Promise<void>;
  /** Records an order in progress or a failure for HOST (null clears it). */
  setAcmeState(host: string, state: AcmeHostState | null): void;
  /** The certificate state of HOST for the routes view. */
  tlsOf(host: string): RouteTls;
}
