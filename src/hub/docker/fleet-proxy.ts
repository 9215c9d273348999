/**
 * /docker/fleet/: the list endpoints asked of every online node at once and merged in Docker's
 * own format, each item labelled `dockfleet.node`. Every node has the same deadline; a slow or
 * dead node is left out and named in X-Dockfleet-Missing-Nodes, never waited for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DOCKER_PREFIX } from '../../protocol/docker-tunnel.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { NodeRegistry } from '../node-registry.ts';

export const NODE_LABEL = 'dockfleet.node';
export const MISSING_HEADER = 'x-dockfleet-missing-nodes';
export const FLEET_API_VERSION = '1.41';

const LIST_PATH = /^(?:\/v\d+\.\d+)?\/(containers\/json|images\/json|volumes|networks)$/;
const PING_PATH = /^(?:\/v\d+\.\d+)?\/_ping$/;
const VERSION_PATH = /^(?:\/v\d+\.\d+)?\/version$/;
const MAX_NODE_ANSWER = 64 * 1024 * 1024;

type Item = Record<string, unknown> & { Labels?: Record<string, string> | null };

function labelled(items: unknown, node: string): Item[] {
  if (!Array.isArray(items)) return [];
  return items.filter((i): i is Item => typeof i === 'object' && i !== null).map((item) => ({ ...item, Labels: { ...(item.Labels ?? {}), [NODE_LABEL]: node } }));
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'api-version': FLEET_API_VERSION, ...headers });
  res.end(payload);
}

/** `canSee` limits the merge to the nodes the caller may see (its grants, hub/access/). */
export async function answerFleet(registry: NodeRegistry, enginePath: string, req: IncomingMessage, res: ServerResponse, deadlineMs: number, canSee: (node: string) => boolean): Promise<number> {
  const [path, query = ''] = enginePath.split('?', 2) as [string, string?];
  const method = req.method ?? 'GET';
  if (PING_PATH.test(path) && (method === 'GET' || method === 'HEAD')) {
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'api-version': FLEET_API_VERSION,
      ostype: 'linux',
      'docker-experimental': 'false',
      'cache-control': 'no-cache, no-store, must-revalidate',
    });
    res.end(method === 'HEAD' ? undefined : 'OK');
    return 200;
  }
  if (VERSION_PATH.test(path) && method === 'GET') {
    sendJson(res, 200, { Version: 'dockfleet-fleet', ApiVersion: FLEET_API_VERSION, MinAPIVersion: '1.24', Os: 'linux', Arch: process.arch === 'x64' ? 'amd64' : process.arch, Components: [] });
    return 200;
  }
  const list = LIST_PATH.exec(path);
  if (!list || method !== 'GET') {
    throw new DockfleetError('not_found', `the fleet endpoint answers only GET containers/json, images/json, volumes and networks; use /docker/nodes/NAME/ for ${method} ${path}`);
  }
  const section = list[1]!;
  const nodes = registry.list().filter((n) => (n.status === 'online' || n.status === 'offline') && canSee(n.name));
  const answers = await Promise.all(
    nodes.map(async (n) => {
      if (n.status !== 'online') return { node: n.name, body: null };
      try {
        const link = registry.requireLink(n.name);
        const reply = await link.requestJson({ method: 'GET', path: `${DOCKER_PREFIX}${path}${query ? `?${query}` : ''}`, timeoutMs: deadlineMs, maxBytes: MAX_NODE_ANSWER });
        return { node: n.name, body: reply.status === 200 ? reply.body : null };
      } catch {
        return { node: n.name, body: null };
      }
    }),
  );
  const missing = answers.filter((a) => a.body === null).map((a) => a.node);
  const headers = { [MISSING_HEADER]: missing.join(',') };
  if (section === 'volumes') {
    const volumes = answers.flatMap((a) => labelled((a.body as { Volumes?: unknown } | null)?.Volumes, a.node));
    const warnings = answers.flatMap((a) => ((a.body as { Warnings?: unknown } | null)?.Warnings as string[] | null) ?? []);
    sendJson(res, 200, { Volumes: volumes, Warnings: warnings }, headers);
  } else {
    sendJson(
      res,
      200,
      answers.flatMap((a) => labelled(a.body, a.node)),
      headers,
    );
  }
  return 200;
}
