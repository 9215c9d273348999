/** Ingress routes over REST: `GET /api/v1/routes`, every route claimed by a container label on
 * any node (served or not, and why not), for anyone signed in; a scoped user ("customer") gets
 * only the routes of the nodes its grants cover. CONTRACT.md gives the shape:
 * {host, path, node, container, port, access, tls: {state, notAfter}, error}, plus protocol,
 * running and nodeOnline. */
import type { Hono } from 'hono';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { routeViews } from '../../protocol/ingress.ts';
import { describeRoutes } from '../openapi/operations.ts';
import type { RouteTable } from '../edge/route-table.ts';

describeRoutes('edge', [{ method: 'get', path: '/api/v1/routes', summary: 'Every ingress route claimed by a container label', responses: { 200: routeViews } }]);

export function routeRoutes(app: Hono<{ Variables: AuthVariables }>, routes: RouteTable): void {
  app.get('/api/v1/routes', (c) => {
    const { access } = c.get('principal');
    const all = routes.list();
    return c.json(access.scoped ? all.filter((r) => access.canSee(r.node)) : all);
  });
}
