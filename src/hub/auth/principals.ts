/**
 * Who is calling: a user, found from a bearer token or from a client certificate the hub
 * issued (the stock docker CLI's way). Disabled users, revoked tokens and revoked or foreign
 * certificates are all `unauthenticated`; what a role may do is `forbidden`. Each principal
 * carries its NodeAccess (hub/access/): its global role and node grants, loaded per call so a
 * changed grant applies at once. Expired tokens are refused; a token's last use is recorded at
 * most once a minute.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Store, UserRole } from '../../store/store.ts';
import { hashToken } from '../admin-token.ts';
import { NodeAccess, type LabelsOf } from '../access/node-access.ts';
import { UI_HEADER, hashSessionId, sessionIdFrom } from './sessions.ts';

export interface Principal {
  userId: string;
  name: string;
  role: UserRole;
  via: 'token' | 'certificate' | 'session';
  /** The session's hash when signed in through the UI (to end it, or keep it on password change). */
  sessionHash?: string;
  /** Which nodes this principal sees, and its role on each. */
  access: NodeAccess;
}

/** What authentication needs from a request, whatever framework carries it. */
export interface Credentials {
  method: string;
  authorization?: string | undefined;
  cookie?: string | undefined;
  uiHeader?: string | undefined;
  /** For WebSocket upgrades, which cannot carry custom headers: Origin must be this hub. */
  origin?: string | undefined;
  host?: string | undefined;
  upgrade?: boolean;
  socket?: TLSSocket | undefined;
}

const BEARER = /^Bearer ([A-Za-z0-9_.~+/=-]{16,512})$/;
const READ_ONLY = new Set(['GET', 'HEAD']);
/** A token's last use is written at most this often. */
const TOUCH_EVERY_MS = 60_000;

export class Principals {
  readonly #store: Store;
  readonly #labelsOf: LabelsOf;

  /** `labelsOf` gives a node's labels (node label grants are matched against them, live). */
  constructor(store: Store, labelsOf: LabelsOf = () => ({})) {
    this.#store = store;
    this.#labelsOf = labelsOf;
  }

  async fromBearer(header: string | undefined): Promise<Principal> {
    const m = BEARER.exec(header ?? '');
    if (!m) throw new DockfleetError('unauthenticated', 'missing or malformed bearer token');
    const tokenHash = hashToken(m[1]!);
    const token = await this.#store.getToken(tokenHash);
    if (!token || token.revokedAt !== null) throw new DockfleetError('unauthenticated', 'invalid or revoked token');
    const now = Date.now();
    const use = await this.#store.access.tokenUse(tokenHash);
    if (use?.expiresAt != null && use.expiresAt <= now) throw new DockfleetError('unauthenticated', 'this token has expired');
    const principal = await this.#user(token.userId, 'token');
    if (use?.lastUsedAt == null || use.lastUsedAt < now - TOUCH_EVERY_MS) await this.#store.access.touchToken(tokenHash, now, now - TOUCH_EVERY_MS);
    return principal;
  }

  /** The certificate's user, or null when the client presented none. */
  async fromCertificate(socket: TLSSocket): Promise<Principal | null> {
    const serial = peerSerial(socket);
    if (serial === null) return null;
    if (!socket.authorized) throw new DockfleetError('unauthenticated', 'client certificate was not issued by this hub');
    // Looked up on every call, so a revocation applies to connections already open.
    const record = await this.#store.getClientCert(serial);
    if (!record || record.revokedAt !== null) throw new DockfleetError('unauthenticated', 'client certificate is revoked or unknown');
    return this.#user(record.userId, 'certificate');
  }

  /** The UI's session cookie. Changes need the X-Dockfleet-UI header (or, for a WebSocket,
   * an Origin of this hub): a cookie alone never authorises a cross-site request. */
  async fromSession(creds: Credentials): Promise<Principal | null> {
    const id = sessionIdFrom(creds.cookie);
    if (!id) return null;
    const idHash = hashSessionId(id);
    const session = await this.#store.getSession(idHash);
    if (!session || session.expiresAt <= Date.now()) throw new DockfleetError('unauthenticated', 'your session has ended; sign in again');
    if (creds.upgrade) {
      if (!creds.origin || !creds.host || new URL(creds.origin).host !== creds.host) {
        throw new DockfleetError('forbidden', 'WebSocket from another origin');
      }
    } else if (!READ_ONLY.has(creds.method) && creds.uiHeader === undefined) {
      throw new DockfleetError('forbidden', `requests that change something need the ${UI_HEADER} header`);
    }
    return { ...(await this.#user(session.userId, 'session')), sessionHash: idHash };
  }

  /** Bearer token first, then the session cookie, then a client certificate. */
  async resolve(creds: Credentials): Promise<Principal> {
    if (creds.authorization !== undefined) return this.fromBearer(creds.authorization);
    const viaSession = await this.fromSession(creds);
    if (viaSession) return viaSession;
    const viaCert = creds.socket && typeof creds.socket.getPeerCertificate === 'function' ? await this.fromCertificate(creds.socket) : null;
    if (!viaCert) throw new DockfleetError('unauthenticated', 'sign in, or use a bearer token or client certificate');
    return viaCert;
  }

  fromRequest(req: IncomingMessage, upgrade = false): Promise<Principal> {
    return this.resolve(credentialsOf(req, upgrade));
  }

  async #user(userId: string, via: Principal['via']): Promise<Principal> {
    const user = await this.#store.getUser(userId);
    if (!user || user.disabledAt !== null) throw new DockfleetError('unauthenticated', 'this user is disabled');
    const [scoped, grants] = await Promise.all([this.#store.access.isScoped(user.id), this.#store.access.listGrants(user.id)]);
    const access = new NodeAccess(scoped ? null : user.role, grants, this.#labelsOf);
    return { userId: user.id, name: user.name, role: user.role, via, access };
  }
}

export function credentialsOf(req: IncomingMessage, upgrade = false): Credentials {
  const ui = req.headers[UI_HEADER];
  return {
    method: req.method ?? 'GET',
    authorization: req.headers.authorization,
    cookie: req.headers.cookie,
    uiHeader: Array.isArray(ui) ? ui[0] : ui,
    origin: req.headers.origin,
    host: req.headers.host,
    upgrade,
    socket: req.socket as TLSSocket,
  };
}

/** Whether the principal may make this Docker API call on `node` (null: the fleet endpoint,
 * which is read-only and merges only the nodes the principal sees). A node out of sight is
 * `node_not_found`. Hijacks (attach/exec) always write. */
export function assertDockerAllowed(principal: Principal, method: string, hijack: boolean, node: string | null): void {
  const writes = hijack || !READ_ONLY.has(method);
  if (node !== null) {
    if (writes) principal.access.requireChange(node, principal.name);
    else principal.access.requireSight(node);
    return;
  }
  if (writes && (principal.access.scoped || principal.role === 'viewer')) {
    throw new DockfleetError('forbidden', `user ${principal.name} may only read across the fleet`);
  }
}

export function assertAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new DockfleetError('forbidden', `user ${principal.name} is not an admin`);
}

/** A connection's client certificate cannot change (the hub refuses renegotiation), so its
 * serial is read once per connection: getPeerCertificate builds a large object per call. */
const serials = new WeakMap<TLSSocket, string | null>();
function peerSerial(socket: TLSSocket): string | null {
  let serial = serials.get(socket);
  if (serial === undefined) {
    const cert = socket.getPeerCertificate();
    serial = cert && Object.keys(cert).length > 0 ? cert.serialNumber.toLowerCase() : null;
    serials.set(socket, serial);
  }
  return serial;
}
