/**
 * The UI's volume file browser: /api/v1/nodes/NAME/volumes/VOL/files?path=… is streamed to the
 * node's agent, which serves the volume's directory on its host and confines every path to
 * it (and whose policy decides whether volume files may be browsed at all). Reading needs any
 * role, changing needs operator or admin; a change's intent is audited before it is forwarded
 * and its outcome after. Transfers count against the user's cap on concurrent streams.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toDockfleetError } from '../../protocol/errors.ts';
import { volumeFilesPath } from '../../protocol/volume-files.ts';
import type { Logger } from '../../lib/logger.ts';
import { isMutating, type AuditCall, type AuditLog } from '../audit-log.ts';
import { assertDockerAllowed, type Principals } from '../auth/principals.ts';
import { proxyToAgent } from '../docker/node-proxy.ts';
import type { StreamCaps } from '../docker/stream-caps.ts';
import type { NodeRegistry } from '../node-registry.ts';

const FILES_PATH = /^\/api\/v1\/nodes\/([a-z0-9][a-z0-9-]{0,62})\/volumes\/([a-zA-Z0-9][a-zA-Z0-9_.-]{0,254})\/files$/;

export function matchVolumeFiles(url: string): { node: string; volume: string; search: string } | null {
  const [path = '', ...query] = url.split('?');
  const m = FILES_PATH.exec(path);
  return m ? { node: m[1]!, volume: m[2]!, search: query.length ? `?${query.join('?')}` : '' } : null;
}

export async function proxyVolumeFiles(
  deps: { registry: NodeRegistry; principals: Principals; audit: AuditLog; log: Logger; caps: StreamCaps },
  route: { node: string; volume: string; search: string },
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  let status: number;
  let call: AuditCall | null = null;
  let release: (() => void) | null = null;
  try {
    const principal = await deps.principals.fromRequest(req);
    assertDockerAllowed(principal, req.method ?? 'GET', false, route.node);
    // A change is audited before it reaches the host, or refused (storage_full).
    if (isMutating(req.method ?? 'GET')) {
      call = await deps.audit.begin({ user: principal.name, node: route.node, method: req.method ?? 'GET', path: `/volumes/${route.volume}/files${route.search}` });
    }
    release = deps.caps.acquire(principal.userId, principal.name);
    status = (await proxyToAgent(deps.registry.requireLink(route.node), volumeFilesPath(route.volume, route.search), req, res, { actor: principal.name, auditRef: call?.id ?? null })).status;
  } catch (err) {
    const e = toDockfleetError(err);
    if (e.code === 'internal') deps.log.error({ err }, 'volume files proxy failed');
    if (!res.headersSent) res.writeHead(e.status, { 'content-type': 'application/json' }).end(JSON.stringify(e.toJSON()));
    status = e.status;
  }
  release?.();
  call?.finish(status);
}
