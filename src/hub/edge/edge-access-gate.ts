/**
 * What the edge asks before it dials a route's app: may this request pass, and as whom? A
 * `public` route passes anyone; `users` (or a role) needs a hub sign-in bound to the route's
 * host. The gate may answer a request itself (a redirect to the hub's sign-in, its own
 * callback path on the app's host, a 403) instead of letting it through.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

/** The header the app can trust: the edge removes any a client sent and sets it from the sign-in. */
export const EDGE_USER_HEADER = 'x-dockfleet-user';
/** The edge's own session cookie on an app's host; never forwarded to the app. */
export const EDGE_SESSION_COOKIE = 'df_edge';

export type EdgeAdmission = { pass: true; user: string | null } | { pass: false; status: number; headers: Record<string, string>; body: string };

/** The route a request matched: its host and path prefix, its access label, and the node its container runs on. */
export interface EdgeRouteAccess {
  host: string;
  path: string;
  access: string;
  node: string;
}

export interface EdgeAccessGate {
  /** Called for every request and upgrade that matched a route, before any dial. */
  admit(req: IncomingMessage | Http2ServerRequest, route: EdgeRouteAccess): Promise<EdgeAdmission>;
}

/** The gate when none is configured: only `public` routes pass. */
export const PUBLIC_ONLY_GATE: EdgeAccessGate = {
  async admit(_req, route) {
    if (route.access === 'public') return { pass: true, user: null };
    return { pass: false, status: 403, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: `${route.host} needs a sign-in, and this edge has none configured.\n` };
  },
};
