/**
 * Who asked for an action, for the host's audit log: the user the hub names (`x-dockfleet-actor`)
 * and its own audit row (`x-dockfleet-audit-ref`) — hints for people reading the log, never trusted
 * for access — and the operator key that signed the call, which only the code that verified the
 * signature can note (`noteSigner`), never a header.
 */
import { ACTOR_HEADER, AUDIT_REF_HEADER } from '../../protocol/intent.ts';

export interface AuditOrigin {
  user?: string;
  ref?: string;
  key?: string;
}

type Headers = Record<string, string | string[] | undefined>;

function one(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text.slice(0, 256);
}

/** Reads the hub's actor and audit-ref headers from a request the hub forwarded. */
export function auditOrigin(headers: Headers): AuditOrigin {
  const origin: AuditOrigin = {};
  const user = one(headers[ACTOR_HEADER]);
  const ref = one(headers[AUDIT_REF_HEADER]);
  if (user !== undefined) origin.user = user;
  if (ref !== undefined) origin.ref = ref;
  return origin;
}

/** The key (and the name its signer goes by) whose signature over each request was verified (weakly held: gone with the request). */
const signers = new WeakMap<object, { key: string; user?: string }>();

/** Records that `req` carried a valid signature by `signer.key` (called after the signature verified). */
export function noteSigner(req: object, signer: { key: string; user?: string }): void {
  signers.set(req, { key: signer.key, ...(signer.user !== undefined ? { user: signer.user } : {}) });
}

/**
 * The hub's hints from `req`'s headers, and the signing key when its signature was verified; the
 * user is the hub's word, else the name the signer put in the intent (as for Docker calls).
 */
export function auditOriginOf(req: { headers: Headers }): AuditOrigin {
  const origin = auditOrigin(req.headers);
  const signer = signers.get(req);
  if (signer !== undefined) {
    origin.key = signer.key;
    if (origin.user === undefined && signer.user !== undefined) origin.user = signer.user.slice(0, 256);
  }
  return origin;
}
