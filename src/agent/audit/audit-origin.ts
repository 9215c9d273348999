/**
 * Who the hub says asked for an action, for the host's audit log: the user it names
 * (`x-dockfleet-actor`) and its own audit row (`x-dockfleet-audit-ref`). Hints for people reading
 * the log, never trusted for access; the signing key, when there is one, comes from the verified
 * intent instead.
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
