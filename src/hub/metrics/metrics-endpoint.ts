/**
 * `GET /metrics` on the hub's port: the Prometheus text format, for the scrape token
 * (DIR/metrics.token) or an admin (the admin token, or a user token, session or client
 * certificate of a user with the admin role). No credentials, or wrong ones: 401; a user who is
 * not an admin: 403; both in the REST API's error format.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toDockfleetError } from '../../protocol/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { assertAdmin, type Principals } from '../auth/principals.ts';
import type { HubMetrics } from './hub-metrics.ts';
import { isScrapeToken } from './scrape-token.ts';

export const METRICS_PATH = '/metrics';

export function isMetricsRequest(req: IncomingMessage): boolean {
  return (req.url ?? '').split('?')[0] === METRICS_PATH && (req.method === 'GET' || req.method === 'HEAD');
}

export interface MetricsEndpointDeps {
  metrics: HubMetrics;
  principals: Principals;
  /** SHA-256 of the scrape token, or null when the hub has none (built without a data dir). */
  scrapeTokenHash: string | null;
  log: Logger;
}

export async function serveMetrics(deps: MetricsEndpointDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const scraper = deps.scrapeTokenHash !== null && isScrapeToken(req.headers.authorization, deps.scrapeTokenHash);
    if (!scraper) assertAdmin(await deps.principals.fromRequest(req));
    const { contentType, body } = await deps.metrics.scrape();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    const e = toDockfleetError(err);
    if (e.code === 'internal') deps.log.error({ err }, 'metrics scrape failed');
    const text = JSON.stringify(e.toJSON());
    res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...(e.status === 401 ? { 'www-authenticate': 'Bearer' } : {}) });
    res.end(text);
  }
}
