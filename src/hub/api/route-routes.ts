/** Ingress routes over REST: `GET /api/v1/routes`, every route claimed by a container label on
 * any node (served or not, and why not), for anyone signed in. CONTRACT.md gives the shape:
 * {host, path, node, container, port, access, tls: {state, notAfter}, error}, plus protocol,
 * running and nodeOnline. */
import type { Hono } from 'hono';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { RouteTable } from '../edge/route-table.ts';

export function routeRoutes(app: Hono<{ Variables: AuthVariables }>, routes: RouteTable): void {
  app.get('/api/v1/routes', (c) => c.json(routes.list()));
}
