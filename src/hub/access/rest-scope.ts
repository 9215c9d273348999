/**
 * Node scope on the REST API, after authentication: a route under /api/v1/nodes/NAME is
 * answered only for a node the principal sees (else node_not_found, as for a node that does not
 * exist), and a change there needs operator or admin on that node. A scoped user ("customer")
 * reaches only its own account, its nodes, and the lists that filter themselves by node (events,
 * routes): every other route is refused, deny by default, so a route added later is closed to
 * customers until it filters by node itself.
 */
import type { MiddlewareHandler } from 'hono';
import type { AuthVariables } from '../auth/rest-auth.ts';

const NODE_ROUTE = /^\/api\/v1\/nodes\/([^/]+)(\/.*)?$/;
/** What a scoped user may reach besides /api/v1/nodes…: its account, tokens, certificates and operator keys, and
 * the events, ingress routes, audit and agent-upgrade lists (each answers only the granted nodes' entries). */
const SCOPED_ALLOWED =
  /^\/api\/v1\/(?:nodes|me|me\/.*|session|tokens|tokens\/[^/]+|client-certs|client-certs\/[^/]+|operator-keys|operator-keys\/[^/]+|events|events\/stream|routes|audit|agent-upgrades|agent-upgrades\/[^/]+)$/;
const READ_ONLY = new Set(['GET', 'HEAD']);

export function restScope(): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const principal = c.get('principal');
    const node = NODE_ROUTE.exec(c.req.path);
    if (node) {
      const name = decodeURIComponent(node[1]!);
      if (READ_ONLY.has(c.req.method)) principal.access.requireSight(name);
      else principal.access.requireChange(name, principal.name);
    } else if (principal.access.scoped && !SCOPED_ALLOWED.test(c.req.path)) {
      principal.access.requireFleetWide(principal.name);
    }
    await next();
  };
}
