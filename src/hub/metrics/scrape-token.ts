/**
 * The scrape token: a bearer secret that opens `GET /metrics` and nothing else, for a Prometheus
 * server that should not hold an admin's token. The first start writes it to DIR/metrics.token
 * (0600), beside admin.token. It is not an API token (no user, no row in api_tokens, so no REST
 * route accepts it); the hub keeps only its SHA-256 hash in memory and compares in constant time.
 * To change it, delete the file and restart the hub.
 */
import { timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { ensureTokenFile, hashToken } from '../admin-token.ts';

export const SCRAPE_TOKEN_FILE = 'metrics.token';

const BEARER = /^Bearer ([A-Za-z0-9_.~+/=-]{16,512})$/;

/** Makes sure DIR/metrics.token exists (0600) and returns the hash the hub checks against. */
export function ensureScrapeToken(dataDir: string): Promise<string> {
  return ensureTokenFile(join(dataDir, SCRAPE_TOKEN_FILE));
}

/** Whether an Authorization header carries the scrape token. */
export function isScrapeToken(authorization: string | undefined, tokenHash: string): boolean {
  const m = BEARER.exec(authorization ?? '');
  if (!m) return false;
  const given = Buffer.from(hashToken(m[1]!), 'hex');
  const wanted = Buffer.from(tokenHash, 'hex');
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
