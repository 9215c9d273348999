/**
 * The hub's ACME, put together from its configuration (`--acme-directory URL`, `--acme-email`,
 * `--acme-ca FILE`): the account under DIR/acme, the client that trusts the system roots plus the
 * given CA, and the manager that keeps the routes' certificates. HTTP-01 is answered when the hub
 * has an HTTP port (`--edge-http`), TLS-ALPN-01 on the edge port otherwise.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../../lib/logger.ts';
import type { SecretBox } from '../../secret-box.ts';
import type { EdgeCertificateBook } from '../certs/certificate-book.ts';
import type { ChallengeBoard } from '../certs/challenge-board.ts';
import { AcmeAccountFile } from './acme-account-file.ts';
import { AcmeClient } from './acme-client.ts';
import { AcmeManager, type RouteSource } from './acme-manager.ts';
import type { AcmeTuning } from './acme-schedule.ts';
import { AcmeTransport } from './acme-transport.ts';

export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email: string | null;
  /** A PEM file of extra CA certificates to trust for the ACME server's HTTPS, or null. */
  readonly caFile: string | null;
}

/** What the ACME client trusts beyond the system roots, read before the hub listens (a bad `--acme-ca` stops it there). */
export interface AcmeTrust {
  readonly extraCaPem: string | null;
}

export async function loadAcmeTrust(settings: AcmeSettings): Promise<AcmeTrust> {
  return { extraCaPem: settings.caFile === null ? null : await readCaFile(settings.caFile) };
}

export interface StartAcmeOptions {
  settings: AcmeSettings;
  trust: AcmeTrust;
  /** True when the hub serves `--edge-http` (then HTTP-01 is used). */
  hasHttpPort: boolean;
  dataDir: string;
  secrets: SecretBox;
  routes: RouteSource;
  book: EdgeCertificateBook;
  board: ChallengeBoard;
  log: Logger;
  tuning?: Partial<AcmeTuning>;
}

/** How long one request to the ACME server may take. */
const REQUEST_TIMEOUT_MS = 30_000;

export function startAcme(opts: StartAcmeOptions): AcmeManager {
  const client = new AcmeClient({
    directoryUrl: opts.settings.directoryUrl,
    email: opts.settings.email,
    transport: new AcmeTransport({ extraCaPem: opts.trust.extraCaPem, timeoutMs: REQUEST_TIMEOUT_MS }),
    account: new AcmeAccountFile(opts.dataDir, opts.secrets, opts.settings.directoryUrl),
  });
  const challenge = opts.hasHttpPort ? 'http-01' : 'tls-alpn-01';
  const manager = new AcmeManager({ routes: opts.routes, book: opts.book, client, board: opts.board, challenge, log: opts.log, ...(opts.tuning ? { tuning: opts.tuning } : {}) });
  manager.start();
  opts.log.info({ directory: opts.settings.directoryUrl, challenge }, 'acme: certificates for routes from this directory');
  return manager;
}

async function readCaFile(file: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`--acme-ca ${file}: ${(err as Error).message}`);
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`--acme-ca ${file}: no PEM certificate in it`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new Error(`--acme-ca ${file}: a certificate in it does not parse`);
    }
  }
  return blocks.join('\n');
}
