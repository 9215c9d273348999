/**
 * What the agent answers on its side of the channel (it is the HTTP/2 server; the hub asks).
 * The inventory stream coalesces: while the hub reads slowly, only the newest version of each
 * section waits to be sent, so memory stays bounded however fast the engine changes.
 */
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { INVENTORY_PATH, NOOP_PATH, ROTATE_PATH, rotateRequest, type InventoryMessage, type InventorySection } from '../protocol/inventory.ts';
import { DOCKER_PREFIX } from '../protocol/docker-tunnel.ts';
import { VOLUME_FILES_PREFIX } from '../protocol/volume-files.ts';
import { parseJsonLine } from '../lib/ndjson.ts';
import { readBounded } from '../lib/read-bounded.ts';
import type { Logger } from '../lib/logger.ts';
import type { AgentIdentity } from './identity.ts';
import type { InventoryWatcher } from './inventory-watcher.ts';

export interface TunnelDeps {
  identity: AgentIdentity;
  inventory: InventoryWatcher;
  log: Logger;
  /** Serves Docker Engine API calls (paths under DOCKER_PREFIX). */
  docker: TunnelHandler;
  /** Serves the hub UI's volume file browser (paths under VOLUME_FILES_PREFIX). */
  volumeFiles: TunnelHandler;
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
    if (path === INVENTORY_PATH && req.method === 'GET') return streamInventory(deps.inventory, res);
    if (path === ROTATE_PATH && req.method === 'POST') return void rotate(deps, req, res);
    sendJson(res, 404, { message: `no such agent endpoint ${path}` });
  };
}

function streamInventory(watcher: InventoryWatcher, res: Http2ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  const dirty = new Set<InventorySection>();
  let engineDirty = true;
  let waiting = false;

  const flush = (): void => {
    waiting = false;
    if (res.closed || res.destroyed) return;
    const messages: InventoryMessage[] = [];
    if (engineDirty) {
      const status = watcher.status;
      messages.push(status.state === 'up' ? { t: 'engine', state: 'up', facts: status.facts } : { t: 'engine', state: 'down', error: status.error.slice(0, 500) });
      engineDirty = false;
    }
    for (const section of dirty) {
      const current = watcher.section(section);
      if (current) messages.push({ t: 'section', section, items: current.items as Array<Record<string, unknown>>, at: current.at });
    }
    dirty.clear();
    for (const m of messages) {
      if (!res.write(`${JSON.stringify(m)}\n`)) {
        waiting = true;
        res.once('drain', flush);
        return;
      }
    }
  };
  const onSection = (section: InventorySection): void => {
    dirty.add(section);
    if (!waiting) flush();
  };
  const onEngine = (): void => {
    engineDirty = true;
    if (!waiting) flush();
  };
  for (const [section] of watcher.snapshot()) dirty.add(section);
  watcher.on('section', onSection);
  watcher.on('engine', onEngine);
  res.once('close', () => {
    watcher.off('section', onSection);
    watcher.off('engine', onEngine);
  });
  flush();
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
