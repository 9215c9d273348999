/**
 * What the agent answers on its side of the channel (it is the HTTP/2 server; the hub asks).
 * The inventory stream is its own file (inventory-stream.ts).
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { INVENTORY_PATH, NOOP_PATH, ROTATE_PATH, rotateRequest } from '../protocol/inventory.ts';
import { DOCKER_PREFIX } from '../protocol/docker-tunnel.ts';
import { VOLUME_FILES_PREFIX } from '../protocol/volume-files.ts';
import { JOBS_PATH } from '../protocol/jobs.ts';
import { STACKS_STATUS_PATH } from '../protocol/stacks.ts';
import { EDGE_DIAL_PATH } from '../protocol/edge-dial.ts';
import { STATS_PATH } from '../protocol/stats.ts';
import { parseJsonLine } from '../lib/ndjson.ts';
import { readBounded } from '../lib/read-bounded.ts';
import type { Logger } from '../lib/logger.ts';
import type { AgentIdentity } from './identity.ts';
import type { InventoryWatcher } from './inventory-watcher.ts';
import { streamInventory } from './inventory-stream.ts';
import type { HostAuditLog } from './audit/host-audit.ts';
import { serveAuditFeed } from './audit/audit-feed.ts';
import { AUDIT_FEED_PATH } from '../protocol/audit-feed.ts';
import type { PolicySummary } from '../protocol/policy-summary.ts';
import { REPLICAS_PATH, replicasMessage } from '../protocol/handshake.ts';

export interface TunnelDeps {
  identity: AgentIdentity;
  inventory: InventoryWatcher;
  log: Logger;
  /** Serves Docker Engine API calls (paths under DOCKER_PREFIX). */
  docker: TunnelHandler;
  /** Serves the hub UI's volume file browser (paths under VOLUME_FILES_PREFIX). */
  volumeFiles: TunnelHandler;
  /** Deliveries of jobs (POST JOBS_PATH; src/agent/jobs/). */
  jobs?: TunnelHandler;
  /** The stacks' status stream (GET STACKS_STATUS_PATH; src/agent/stacks/). */
  stacksStatus?: TunnelHandler;
  /** The edge's connections to containers on this host (POST EDGE_DIAL_PATH; src/agent/edge/). */
  edgeDial?: TunnelHandler;
  /** Container and host stats while the hub watches (GET STATS_PATH; src/agent/stats/). */
  stats?: TunnelHandler;
  /** What this host's policy allows, sent first on each inventory stream. */
  policySummary?: PolicySummary;
  /** The host's own audit log, whose head the inventory stream reports. */
  audit?: HostAuditLog;
  /** Keeps the hub's changed replica list (PUT REPLICAS_PATH; issue 17). */
  replicas?: (list: string[]) => Promise<void>;
}

export type TunnelHandler = (req: Http2ServerRequest, res: Http2ServerResponse) => void | Promise<void>;

function sendJson(res: Http2ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

export function createTunnelHandler(deps: TunnelDeps): TunnelHandler {
  return (req, res) => {
    const path = req.url.split('?')[0] ?? '';
    if (path.startsWith(`${DOCKER_PREFIX}/`)) return void deps.docker(req, res);
    if (path.startsWith(`${VOLUME_FILES_PREFIX}/`)) return void deps.volumeFiles(req, res);
    if (path === NOOP_PATH) {
      res.writeHead(204);
      res.end();
      return;
    }
    if (path === INVENTORY_PATH && req.method === 'GET') return streamInventory(deps.inventory, res, deps.policySummary, deps.audit);
    if (path === ROTATE_PATH && req.method === 'POST') return void rotate(deps, req, res);
    if (path === JOBS_PATH && req.method === 'POST' && deps.jobs) return void deps.jobs(req, res);
    if (path === STACKS_STATUS_PATH && req.method === 'GET' && deps.stacksStatus) return void deps.stacksStatus(req, res);
    if (path === EDGE_DIAL_PATH && deps.edgeDial) return void deps.edgeDial(req, res);
    if (path === STATS_PATH && req.method === 'GET' && deps.stats) return void deps.stats(req, res);
    if (path === AUDIT_FEED_PATH && req.method === 'GET' && deps.audit) return void serveAuditFeed(deps.audit, req, res);
    if (path === REPLICAS_PATH && req.method === 'PUT' && deps.replicas) return void takeReplicas(deps.replicas, req, res);
    sendJson(res, 404, { message: `no such agent endpoint ${path}` });
  };
}

async function takeReplicas(keep: (list: string[]) => Promise<void>, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const raw = await readBounded(req as AsyncIterable<Buffer>, 256 * 1024);
  if (raw === null) return sendJson(res, 413, { message: 'body too large' });
  const parsed = parseJsonLine(raw.toString('utf8'));
  const body = parsed.ok ? replicasMessage.safeParse(parsed.value) : null;
  if (!body?.success) return sendJson(res, 400, { message: 'malformed replica list' });
  await keep(body.data.replicas);
  sendJson(res, 200, { replicas: body.data.replicas.length });
}

async function rotate(deps: TunnelDeps, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  const raw = await readBounded(req as AsyncIterable<Buffer>, 4096);
  if (raw === null) return sendJson(res, 413, { message: 'body too large' });
  const parsed = parseJsonLine(raw.toString('utf8'));
  const body = parsed.ok ? rotateRequest.safeParse(parsed.value) : null;
  if (!body?.success) return sendJson(res, 400, { message: 'malformed rotate request' });
  try {
    if (body.data.phase === 'prepare') return sendJson(res, 200, await deps.identity.prepareRotation());
    const ok = await deps.identity.promoteNextKey(body.data.keyId);
    if (ok) deps.log.info({ keyId: body.data.keyId }, 'key rotated');
    sendJson(res, ok ? 200 : 409, ok ? { keyId: body.data.keyId } : { message: 'no prepared key with that id' });
  } catch (err) {
    deps.log.error({ err }, 'key rotation failed');
    sendJson(res, 500, { message: 'key rotation failed on the agent' });
  }
}
