/**
 * Who is calling: a user, found from a bearer token or from a client certificate the hub
 * issued (the stock docker CLI's way). Disabled users, revoked tokens and revoked or foreign
 * certificates are all `unauthenticated`; what a role may do is `forbidden`.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Store, UserRole } from '../../store/store.ts';
import { hashToken } from '../admin-token.ts';

export interface Principal {
  userId: string;
  name: string;
  role: UserRole;
  via: 'token' | 'certificate';
}

const BEARER = /^Bearer ([A-Za-z0-9_.~+/=-]{16,512})$/;
const READ_ONLY = new Set(['GET', 'HEAD']);

export class Principals {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async fromBearer(header: string | undefined): Promise<Principal> {
    const m = BEARER.exec(header ?? '');
    if (!m) throw new DockfleetError('unauthenticated', 'missing or malformed bearer token');
    const token = await this.#store.getToken(hashToken(m[1]!));
    if (!token || token.revokedAt !== null) throw new DockfleetError('unauthenticated', 'invalid or revoked token');
    return this.#user(token.userId, 'token');
  }

  /** The certificate's user, or null when the client presented none. */
  async fromCertificate(socket: TLSSocket): Promise<Principal | null> {
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return null;
    if (!socket.authorized) throw new DockfleetError('unauthenticated', 'client certificate was not issued by this hub');
    const record = await this.#store.getClientCert(cert.serialNumber.toLowerCase());
    if (!record || record.revokedAt !== null) throw new DockfleetError('unauthenticated', 'client certificate is revoked or unknown');
    return this.#user(record.userId, 'certificate');
  }

  /** A bearer token wins over a certificate when both are present. */
  async fromRequest(req: IncomingMessage): Promise<Principal> {
    if (req.headers.authorization !== undefined) return this.fromBearer(req.headers.authorization);
    const viaCert = typeof (req.socket as TLSSocket).getPeerCertificate === 'function' ? await this.fromCertificate(req.socket as TLSSocket) : null;
    if (!viaCert) throw new DockfleetError('unauthenticated', 'a client certificate or bearer token is required');
    return viaCert;
  }

  async #user(userId: string, via: Principal['via']): Promise<Principal> {
    const user = await this.#store.getUser(userId);
    if (!user || user.disabledAt !== null) throw new DockfleetError('unauthenticated', 'this user is disabled');
    return { userId: user.id, name: user.name, role: user.role, via };
  }
}

/** Whether a role may make this Docker API call. Hijacks (attach/exec) always write. */
export function assertDockerAllowed(principal: Principal, method: string, hijack: boolean): void {
  if (principal.role === 'viewer' && (hijack || !READ_ONLY.has(method))) {
    throw new DockfleetError('forbidden', `user ${principal.name} (viewer) may only read`);
  }
}

export function assertAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new DockfleetError('forbidden', `user ${principal.name} is not an admin`);
}
