/** REST authentication: a bearer token, or the UI's session cookie (see Principals.resolve). */
import type { MiddlewareHandler } from 'hono';
import type { Principal, Principals } from './principals.ts';
import { UI_HEADER } from './sessions.ts';

export type AuthVariables = {
  principal: Principal;
  /** Resolves the caller again from the same credentials (long-lived streams re-check access with it). */
  reauthenticate: () => Promise<Principal>;
};

export function restAuth(principals: Principals): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const creds = {
      method: c.req.method,
      authorization: c.req.header('authorization'),
      cookie: c.req.header('cookie'),
      uiHeader: c.req.header(UI_HEADER),
    };
    c.set('principal', await principals.resolve(creds));
    c.set('reauthenticate', () => principals.resolve(creds));
    await next();
  };
}
