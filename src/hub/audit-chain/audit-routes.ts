/**
 * The audit routes: GET /api/v1/audit (admins see every row; anyone else only the rows on nodes
 * where they are operator or admin, never the hub-wide ones), GET /api/v1/audit/verify (admins: the
 * hub's own chain, as `dockfleet audit verify` checks it), and GET /api/v1/nodes/NAME/audit-agreement
 * (whether the host's log and the hub's agree; for whoever may act on that node; `?full=1` reads
 * the host's log again from its start).
 */
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { auditQuery, auditRow } from '../../protocol/api.ts';
import { z as zod } from 'zod';
import { describeRoutes } from '../openapi/operations.ts';

describeRoutes('audit', [
  { method: 'get', path: '/api/v1/audit', summary: 'The audit log, newest first (admins: all; others: the nodes they act on)', query: auditQuery, responses: { 200: zod.array(auditRow) } },
  { method: 'get', path: '/api/v1/audit/verify', summary: "The hub's audit chain verdict (admin)", responses: { 200: zod.looseObject({ ok: zod.boolean() }) } },
  {
    method: 'get',
    path: '/api/v1/nodes/{name}/audit-agreement',
    summary: "Whether the host's own audit log and the hub's agree",
    query: zod.object({ full: zod.enum(['0', '1']).optional() }),
    responses: {
      200: zod.looseObject({
        node: zod.string(),
        state: zod.string(),
        hostHead: zod.object({ seq: zod.number().int(), hash: zod.string() }).nullable(),
        checkedThrough: zod.number().int(),
        hubOnlyCount: zod.number().int(),
        hostOnlyCount: zod.number().int(),
      }),
    },
  },
]);
import type { Logger } from '../../lib/logger.ts';
import type { Store } from '../../store/store.ts';
import type { AuditLog } from '../audit-log.ts';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { compareWithHost } from './audit-agreement.ts';
import { HostAuditMirror } from './host-audit-mirror.ts';

export interface AuditRouteDeps {
  store: Store;
  registry: NodeRegistry;
  audit: AuditLog;
  log: Logger;
  parse: <T>(schema: z.ZodType<T>, raw: unknown) => T;
}

type C = Context<{ Variables: AuthVariables }>;

/** The nodes where this principal may act (operator or admin there). */
function actableNodes(c: C, registry: NodeRegistry): string[] {
  const access = c.get('principal').access;
  return registry
    .list()
    .map((n) => n.name)
    .filter((name) => {
      const role = access.roleOn(name);
      return role === 'operator' || role === 'admin';
    });
}

export function auditRoutes(app: Hono<{ Variables: AuthVariables }>, deps: AuditRouteDeps): HostAuditMirror {
  const { store, registry, audit, parse } = deps;
  const mirror = new HostAuditMirror(registry, deps.log);

  app.get('/api/v1/audit', async (c) => {
    const q = parse(auditQuery, c.req.query());
    const principal = c.get('principal');
    const scope = principal.role === 'admin' && !principal.access.scoped ? {} : { nodes: actableNodes(c, registry) };
    const rows = await audit.query({ ...q, ...scope });
    return c.json(rows.map((r) => ({ ...r, time: new Date(r.at).toISOString() })));
  });

  app.get('/api/v1/audit/verify', async (c) => {
    assertAdmin(c.get('principal'));
    return c.json(await store.auditChain.verify());
  });

  app.get('/api/v1/nodes/:name/audit-agreement', async (c) => {
    const name = c.req.param('name');
    const principal = c.get('principal');
    principal.access.requireChange(name, principal.name);
    registry.require(name);
    if (c.req.query('full') !== undefined && c.req.query('full') !== '0' && c.req.query('full') !== '1') {
      throw new DockfleetError('validation_failed', 'full: 0 or 1');
    }
    return c.json(await compareWithHost(name, mirror, store, { full: c.req.query('full') === '1' }));
  });

  return mirror;
}
