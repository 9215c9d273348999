/**
 * The edge's access gate (EdgeAccessGate) for routes marked `users` or a role. A request with a
 * good `df_edge` session for its host passes as that user, looked up again on every request (so
 * a role change, a disabled user or a sign-out at the hub applies to the next one). Without
 * one: a browser's GET is sent to the hub's hand-off page; anything else, WebSockets included,
 * gets 401. The host's callback (`PREFIX/.dockfleet/auth?code=…`) is answered here: the code is
 * taken once, the session cookie set, and the browser sent back to where it was going.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Store, UserRole } from '../../../store/store.ts';
import type { SecretBox } from '../../secret-box.ts';
import type { EdgeAccessGate, EdgeAdmission, EdgeRouteAccess } from '../edge-access-gate.ts';
import { NodeAccess, type LabelsOf } from '../../access/node-access.ts';
import { isAccessLevel, roleAdmits } from './access-levels.ts';
import { codeRefused, isUpgrade, roleNeeded, signInNeeded, toHubSignIn, unknownAccess, wantsHtml } from './access-answers.ts';
import { EDGE_SESSION_TTL_MS, clearedEdgeSessionCookie, edgeCookieValues, edgeSessionCookie, openEdgeSession, sealEdgeSession } from './edge-session.ts';
import type { HandOffCodes } from './hand-off-codes.ts';
import { callbackPath } from './hand-off-target.ts';

/** The hub's page that turns a hub sign-in into a code for an app host. */
export const HAND_OFF_PAGE = '/edge-sign-in';

type Req = IncomingMessage | Http2ServerRequest;

export interface SignInGateOptions {
  store: Pick<Store, 'getSession' | 'getUser' | 'access'>;
  /** A node's labels (for grants by label); none when not given. */
  labelsOf?: LabelsOf;
  secrets: SecretBox;
  codes: HandOffCodes;
  /** The hub's management URL, where browsers sign in (`RunningHub.url`). */
  hubUrl: string;
  now?: () => number;
}

/** The user, and their role on the route's node (global role or grants; null: the node is out of their sight). */
interface SignedIn {
  name: string;
  role: UserRole | null;
}

export class SignInGate implements EdgeAccessGate {
  readonly #opts: SignInGateOptions;
  readonly #now: () => number;

  constructor(opts: SignInGateOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  async admit(req: Req, route: EdgeRouteAccess): Promise<EdgeAdmission> {
    if (route.access === 'public') return { pass: true, user: null };
    if (!isAccessLevel(route.access)) return unknownAccess(req, route);
    const url = requestUrl(req);
    if (url.pathname === callbackPath(route.path)) return this.#callback(req, route, url);
    const cookies = edgeCookieValues(req.headers.cookie);
    const user = await this.#signedIn(cookies, route.host, route.node);
    if (user) {
      // A user granted only some nodes (a customer) passes only to apps on those nodes.
      if (user.role !== null && roleAdmits(user.role, route.access)) return { pass: true, user: user.name };
      return roleNeeded(req, route, { name: user.name, role: user.role ?? 'no' });
    }
    // A stale or foreign cookie is dropped on the way, so the browser does not keep sending it.
    const clear: Record<string, string> = cookies.length > 0 ? { 'set-cookie': clearedEdgeSessionCookie() } : {};
    if (isUpgrade(req) || !(req.method === 'GET' || req.method === 'HEAD') || !wantsHtml(req)) return signInNeeded(req, route, clear);
    const authority = String(req.headers[':authority'] ?? req.headers.host ?? route.host);
    const handOff = new URL(HAND_OFF_PAGE, this.#opts.hubUrl);
    handOff.searchParams.set('host', authority);
    handOff.searchParams.set('return', url.pathname + url.search);
    return toHubSignIn(handOff.href, clear);
  }

  /** The user a cookie's session belongs to, if it is for this host, unexpired, and its hub session and user still stand. */
  async #signedIn(cookies: string[], host: string, node: string): Promise<SignedIn | null> {
    const now = this.#now();
    for (const value of cookies) {
      const session = openEdgeSession(this.#opts.secrets, value, host, now);
      if (!session) continue;
      const user = await this.#hubUser(session.session, session.user, now);
      if (!user) continue;
      const [scoped, grants] = await Promise.all([this.#opts.store.access.isScoped(session.user), this.#opts.store.access.listGrants(session.user)]);
      const access = new NodeAccess(scoped ? null : user.role, grants, this.#opts.labelsOf ?? (() => ({})));
      return { name: user.name, role: access.roleOn(node) };
    }
    return null;
  }

  async #hubUser(sessionHash: string, userId: string, now: number): Promise<(SignedIn & { sessionExpiresAt: number }) | null> {
    const hub = await this.#opts.store.getSession(sessionHash);
    if (!hub || hub.expiresAt <= now || hub.userId !== userId) return null;
    const user = await this.#opts.store.getUser(userId);
    if (!user || user.disabledAt !== null) return null;
    return { name: user.name, role: user.role, sessionExpiresAt: hub.expiresAt };
  }

  async #callback(req: Req, route: EdgeRouteAccess, url: URL): Promise<EdgeAdmission> {
    // A refused code leaves any session the browser holds alone: a link to a spent code must not sign anyone out.
    const noReferrer = { 'referrer-policy': 'no-referrer' };
    if (req.method !== 'GET' && req.method !== 'HEAD') return codeRefused(req, route, noReferrer);
    const handOff = this.#opts.codes.take(url.searchParams.get('code') ?? '');
    if (!handOff || handOff.host !== route.host) return codeRefused(req, route, noReferrer);
    const now = this.#now();
    const user = await this.#hubUser(handOff.session, handOff.userId, now);
    if (!user) return codeRefused(req, route, noReferrer);
    const expiresAt = Math.min(user.sessionExpiresAt, now + EDGE_SESSION_TTL_MS);
    const value = sealEdgeSession(this.#opts.secrets, { host: route.host, session: handOff.session, user: handOff.userId, expiresAt });
    return {
      pass: false,
      status: 302,
      body: '',
      headers: { location: handOff.returnPath, 'set-cookie': edgeSessionCookie(value, expiresAt - now), 'cache-control': 'no-store', ...noReferrer },
    };
  }
}

/** The request's path and query; an absolute-form target keeps only those. */
function requestUrl(req: Req): URL {
  try {
    const url = new URL(req.url || '/', 'https://edge.invalid');
    return url.origin === 'https://edge.invalid' ? url : new URL(url.pathname + url.search, 'https://edge.invalid');
  } catch {
    return new URL('/', 'https://edge.invalid');
  }
}
