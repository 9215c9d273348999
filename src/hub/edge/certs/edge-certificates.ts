/**
 * The edge's certificate book (certificate-book.ts): every supplied and ACME certificate, kept
 * in the hub's store with its private key sealed by the SecretBox (bound to the certificate's
 * id), and held in memory from start for the TLS handshakes, which look names up without
 * touching the database. A certificate added or removed is served from the next handshake on.
 *
 * Choosing for a server name: among the certificates that cover it, a supplied one naming it
 * exactly, then a supplied wildcard (`*.example.com` covers exactly one label), then the ACME
 * certificate for it; within one kind the one that lasts longest. A certificate that has
 * expired is chosen only when no unexpired one covers the name.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { DockfleetError } from '../../../protocol/errors.ts';
import type { CertificateView } from '../../../protocol/ingress.ts';
import type { Logger } from '../../../lib/logger.ts';
import type { CertificateRecord, CertStore } from '../../../store/cert-store.ts';
import type { SecretBox } from '../../secret-box.ts';
import type { AcmeCertificateRecord, AcmeHostState, EdgeCertificateBook, PemPair, RouteTls } from './certificate-book.ts';
import { checkPair } from './pem-pair.ts';

/** Shown as `expiring` with less than this left, whatever the lifetime (or less than a third of it). */
export const EXPIRING_WITHIN_MS = 30 * 24 * 3600_000;

interface Entry {
  record: CertificateRecord;
  pair: PemPair;
  issuer: string;
}

/** The context a certificate's sealed key is bound to: a sealed key copied to another row does not open. */
export const sealContext = (id: string): string => `edge-certificate:${id}`;

const NO_TLS: RouteTls = Object.freeze({ state: 'none', notAfter: null, error: null });

export interface EdgeCertificatesOptions {
  store: CertStore;
  secrets: SecretBox;
  log: Logger;
  now?: () => number;
}

export class EdgeCertificates implements EdgeCertificateBook {
  readonly #store: CertStore;
  readonly #secrets: SecretBox;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #byId = new Map<string, Entry>();
  /** Supplied certificates by each exact name they carry. */
  readonly #exact = new Map<string, Entry[]>();
  /** Supplied wildcards by the domain whose single-label children they cover (`*.a.b` → `a.b`). */
  readonly #wildcard = new Map<string, Entry[]>();
  readonly #acme = new Map<string, Entry>();
  readonly #acmeState = new Map<string, AcmeHostState>();

  private constructor(opts: EdgeCertificatesOptions) {
    this.#store = opts.store;
    this.#secrets = opts.secrets;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
  }

  /** Loads every stored certificate; one whose key does not open is left out (and logged, without detail). */
  static async open(opts: EdgeCertificatesOptions): Promise<EdgeCertificates> {
    const book = new EdgeCertificates(opts);
    for (const record of await opts.store.listCertificates()) {
      try {
        book.#index(record, opts.secrets.openText(record.sealedKey, sealContext(record.id)));
      } catch (err) {
        opts.log.error({ id: record.id, names: record.names, code: (err as { code?: string }).code }, "edge certificate left out: its key does not open under this hub's master key");
      }
    }
    return book;
  }

  // --- the seam (certificate-book.ts) ---

  forServerName(serverName: string): PemPair | null {
    return this.#chosen(serverName.toLowerCase())?.pair ?? null;
  }

  coveredBySupplied(host: string): boolean {
    const now = this.#now();
    return this.#supplied(host.toLowerCase()).some((e) => e.record.notAfter > now);
  }

  acmeCertificate(host: string): AcmeCertificateRecord | null {
    const entry = this.#acme.get(host.toLowerCase());
    if (!entry) return null;
    const { record } = entry;
    return { host: record.acmeHost!, certPem: record.certPem, notBefore: new Date(record.notBefore), notAfter: new Date(record.notAfter) };
  }

  async putAcme(host: string, certPem: string, keyPem: string): Promise<void> {
    const name = host.toLowerCase();
    const checked = checkPair(certPem, keyPem, this.#now());
    if (!checked.names.some((n) => covers(n, name))) {
      throw new DockfleetError('validation_failed', `the ACME certificate does not name ${name}`);
    }
    const record = this.#recordOf('acme', name, checked);
    const replaced = await this.#store.replaceAcmeCertificate(record);
    for (const id of replaced) this.#unindex(id);
    this.#index(record, checked.keyPem);
    this.#acmeState.delete(name);
  }

  setAcmeState(host: string, state: AcmeHostState | null): void {
    if (state === null) this.#acmeState.delete(host.toLowerCase());
    else this.#acmeState.set(host.toLowerCase(), { ...state });
  }

  /** A property, so the route table can hold it as a plain function. */
  readonly tlsOf = (host: string): RouteTls => {
    const name = host.toLowerCase();
    const chosen = this.#chosen(name);
    if (chosen?.record.source === 'supplied') return { state: 'supplied', notAfter: iso(chosen.record.notAfter), error: null };
    const acme = this.#acme.get(name)?.record;
    const state = this.#acmeState.get(name);
    const notAfter = acme ? iso(acme.notAfter) : null;
    if (state?.state === 'failed') return { state: 'failed', notAfter, error: state.error ?? 'the ACME order failed' };
    if (state?.state === 'pending') return { state: 'pending', notAfter, error: null };
    if (!acme) return NO_TLS;
    const left = acme.notAfter - this.#now();
    const expiring = left < (acme.notAfter - acme.notBefore) / 3 || left < EXPIRING_WITHIN_MS;
    return { state: expiring ? 'expiring' : 'valid', notAfter, error: null };
  };

  // --- supplied certificates (REST, CLI) ---

  /** Checks and stores a supplied certificate; refuses a garbled, mismatched or expired one. */
  async addSupplied(certPem: string, keyPem: string): Promise<CertificateView> {
    const checked = checkPair(certPem, keyPem, this.#now());
    const same = [...this.#byId.values()].find((e) => e.record.source === 'supplied' && e.record.fingerprint === checked.fingerprint);
    if (same) throw new DockfleetError('invalid_state', `this certificate is stored already, as ${same.record.id}`);
    const record = this.#recordOf('supplied', null, checked);
    await this.#store.insertCertificate(record);
    const entry = this.#index(record, checked.keyPem);
    this.#log.info({ id: record.id, names: record.names, notAfter: iso(record.notAfter) }, 'edge certificate added');
    return viewOf(entry);
  }

  /** Removes a certificate (supplied or ACME); the next handshake for its names falls back. */
  async remove(id: string): Promise<CertificateView> {
    const entry = this.#byId.get(id);
    if (!entry || !(await this.#store.deleteCertificate(id))) throw new DockfleetError('not_found', `no edge certificate ${id}`);
    this.#unindex(id);
    this.#log.info({ id, names: entry.record.names, source: entry.record.source }, 'edge certificate removed');
    return viewOf(entry);
  }

  list(): CertificateView[] {
    return [...this.#byId.values()].sort((a, b) => a.record.createdAt - b.record.createdAt || a.record.id.localeCompare(b.record.id)).map(viewOf);
  }

  // --- the index ---

  /** Every certificate covering NAME, in precedence order; the first unexpired one is served. */
  #candidates(name: string): Entry[] {
    const acme = this.#acme.get(name);
    return acme ? [...this.#supplied(name), acme] : this.#supplied(name);
  }

  #supplied(name: string): Entry[] {
    const dot = name.indexOf('.');
    const wild = dot > 0 ? (this.#wildcard.get(name.slice(dot + 1)) ?? []) : [];
    return [...longestFirst(this.#exact.get(name) ?? []), ...longestFirst(wild)];
  }

  #chosen(name: string): Entry | null {
    if (name === '') return null;
    const candidates = this.#candidates(name);
    const now = this.#now();
    return candidates.find((e) => e.record.notAfter > now) ?? candidates[0] ?? null;
  }

  #recordOf(source: CertificateRecord['source'], acmeHost: string | null, checked: ReturnType<typeof checkPair>): CertificateRecord {
    const id = randomBytes(6).toString('hex');
    return {
      id,
      source,
      acmeHost,
      names: checked.names,
      certPem: checked.certPem,
      sealedKey: this.#secrets.seal(checked.keyPem, sealContext(id)),
      fingerprint: checked.fingerprint,
      notBefore: checked.notBefore,
      notAfter: checked.notAfter,
      createdAt: this.#now(),
    };
  }

  #index(record: CertificateRecord, keyPem: string): Entry {
    const entry: Entry = { record, pair: { cert: record.certPem, key: keyPem }, issuer: issuerOf(record.certPem) };
    this.#byId.set(record.id, entry);
    if (record.source === 'acme') {
      this.#acme.set(record.acmeHost!, entry);
      return entry;
    }
    for (const name of record.names) {
      const [map, key] = name.startsWith('*.') ? [this.#wildcard, name.slice(2)] : [this.#exact, name];
      map.set(key, [...(map.get(key) ?? []), entry]);
    }
    return entry;
  }

  #unindex(id: string): void {
    const entry = this.#byId.get(id);
    if (!entry) return;
    this.#byId.delete(id);
    const { record } = entry;
    if (record.source === 'acme') {
      if (this.#acme.get(record.acmeHost!) === entry) this.#acme.delete(record.acmeHost!);
      return;
    }
    for (const name of record.names) {
      const [map, key] = name.startsWith('*.') ? [this.#wildcard, name.slice(2)] : [this.#exact, name];
      const rest = (map.get(key) ?? []).filter((e) => e !== entry);
      if (rest.length === 0) map.delete(key);
      else map.set(key, rest);
    }
  }
}

/** Whether a certificate name (exact or `*.` wildcard) covers HOST. */
export function covers(certName: string, host: string): boolean {
  if (!certName.startsWith('*.')) return certName === host;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === certName.slice(2);
}

function longestFirst(entries: Entry[]): Entry[] {
  return entries.length < 2 ? entries : [...entries].sort((a, b) => b.record.notAfter - a.record.notAfter);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function issuerOf(certPem: string): string {
  try {
    return new X509Certificate(certPem).issuer.replace(/\n/g, ', ');
  } catch {
    return '';
  }
}

function viewOf(entry: Entry): CertificateView {
  const { record } = entry;
  return {
    id: record.id,
    source: record.source,
    names: [...record.names],
    notBefore: iso(record.notBefore),
    notAfter: iso(record.notAfter),
    fingerprint: record.fingerprint,
    issuer: entry.issuer,
    acmeHost: record.acmeHost,
    createdAt: iso(record.createdAt),
  };
}
