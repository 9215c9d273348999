/** REST authentication: a bearer token that belongs to an enabled user. */
import type { MiddlewareHandler } from 'hono';
import type { Principal, Principals } from './principals.ts';

export type AuthVariables = { principal: Principal };

export function bearerAuth(principals: Principals): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    c.set('principal', await principals.fromBearer(c.req.header('authorization')));
    await next();
  };
}
