/**
 * Sign-in for routes marked `users` or a role, the hub's half: the hand-off that turns a hub
 * session into a one-time code for one app host (asked by the hub's own page, whose session
 * cookie is SameSite=Strict and so never rides a navigation from an app), and the gate the edge
 * asks on the app's side. Built with the hub; told the edge's port once the edge listens.
 */
import { DockfleetError } from '../../../protocol/errors.ts';
import type { Store } from '../../../store/store.ts';
import type { Principal } from '../../auth/principals.ts';
import type { SecretBox } from '../../secret-box.ts';
import { HandOffCodes } from './hand-off-codes.ts';
import { callbackPath, checkReturnPath, parseAppAuthority } from './hand-off-target.ts';
import { SignInGate } from './sign-in-gate.ts';
import type { LabelsOf } from '../../access/node-access.ts';

/** What the hand-off needs of the route table (route-table.ts's `match`, structurally). */
export interface AccessRouteLookup {
  match(host: string, path: string): { path: string; target: { access: string } } | null;
}

export interface EdgeSignInOptions {
  store: Pick<Store, 'getSession' | 'getUser' | 'access'>;
  /** A node's labels, for grants by label. */
  labelsOf?: LabelsOf;
  secrets: SecretBox;
  routes: AccessRouteLookup;
  now?: () => number;
  codeTtlMs?: number;
}

export interface HandOffAnswer {
  /** The app host's callback with the code: the hub's page sends the browser there. */
  url: string;
  expiresAt: string;
}

export class EdgeSignIn {
  readonly #opts: EdgeSignInOptions;
  readonly codes: HandOffCodes;
  #edgePort: number | null = null;

  constructor(opts: EdgeSignInOptions) {
    this.#opts = opts;
    this.codes = new HandOffCodes({ ...(opts.now ? { now: opts.now } : {}), ...(opts.codeTtlMs ? { ttlMs: opts.codeTtlMs } : {}) });
  }

  /** The port the edge listens on: an app host named with a port must name this one. */
  servesOn(port: number): void {
    this.#edgePort = port;
  }

  /** The gate for the edge proxy; `hubUrl` is where browsers are sent to sign in. */
  gate(hubUrl: string): SignInGate {
    return new SignInGate({
      store: this.#opts.store,
      secrets: this.#opts.secrets,
      codes: this.codes,
      hubUrl,
      ...(this.#opts.labelsOf ? { labelsOf: this.#opts.labelsOf } : {}),
      ...(this.#opts.now ? { now: this.#opts.now } : {}),
    });
  }

  /** A code for `appHost` (as the browser named it) carrying the caller's hub session there. */
  handOff(principal: Omit<Principal, 'access'>, appHost: string, returnTo: string): HandOffAnswer {
    if (principal.via !== 'session' || !principal.sessionHash) {
      throw new DockfleetError('forbidden', 'an app sign-in is handed on from a browser session at the hub, not a token or certificate');
    }
    const { host, authority } = parseAppAuthority(appHost, this.#edgePort);
    const back = checkReturnPath(returnTo);
    const route = this.#opts.routes.match(host, back.pathname);
    if (!route || route.target.access === 'public') {
      throw new DockfleetError('not_found', `${host}${back.pathname} is not a route that needs a sign-in`);
    }
    const callback = callbackPath(route.path);
    // The callback must reach this route's gate (not a deeper route that would pass the code on).
    if (this.#opts.routes.match(host, callback)?.path !== route.path) {
      throw new DockfleetError('not_found', `${host}${callback} is served by another route`);
    }
    const { code, expiresAt } = this.codes.issue({ host, returnPath: back.path, session: principal.sessionHash, userId: principal.userId });
    return { url: `https://${authority}${callback}?code=${code}`, expiresAt: new Date(expiresAt).toISOString() };
  }
}
