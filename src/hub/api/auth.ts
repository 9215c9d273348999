/** Bearer-token authentication for the REST API: the token's hash must be a live token. */
import type { MiddlewareHandler } from 'hono';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Store, TokenRecord } from '../../store/store.ts';
import { hashToken } from '../admin-token.ts';

export type AuthVariables = { principal: TokenRecord };

export function bearerAuth(store: Store): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer ([A-Za-z0-9_.~+/=-]{16,512})$/.exec(header);
    if (!m) throw new DockfleetError('unauthenticated', 'missing or malformed bearer token');
    const token = await store.getToken(hashToken(m[1]!));
    if (!token || token.revokedAt !== null) throw new DockfleetError('unauthenticated', 'invalid or revoked token');
    c.set('principal', token);
    await next();
  };
}
