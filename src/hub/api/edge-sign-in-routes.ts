/**
 * The hub's side of signing in to an app on the edge: `POST /api/v1/edge/hand-off {host, return}`
 * gives the browser signed in here a one-time code for that app host, as the URL of the host's
 * callback. Only the hub's own page (`/edge-sign-in`) asks: the session cookie is SameSite=Strict
 * and a change needs the X-Dockfleet-UI header, so another site cannot get a code for a visitor.
 * The code is in this answer by design (it is how it reaches the browser); never in a log.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { describeRoutes } from '../openapi/operations.ts';
import type { EdgeSignIn } from '../edge/access/edge-sign-in.ts';

type Parse = <T>(c: Context, schema: z.ZodType<T>) => Promise<T>;

export const handOffBody = z
  .object({
    host: z.string().min(1).max(300),
    return: z.string().min(1).max(2048),
  })
  .strict();

describeRoutes('edge', [
  {
    method: 'post',
    path: '/api/v1/edge/hand-off',
    summary: 'A one-time sign-in code for an app host on the edge, as its callback URL',
    body: handOffBody,
    responses: { 200: z.object({ url: z.string(), expiresAt: z.string() }) },
  },
]);

export function edgeSignInRoutes(app: Hono<{ Variables: AuthVariables }>, signIn: EdgeSignIn, parse: Parse): void {
  app.post('/api/v1/edge/hand-off', async (c) => {
    const body = await parse(c, handOffBody);
    const answer = signIn.handOff(c.get('principal'), body.host, body.return);
    c.header('cache-control', 'no-store');
    return c.json(answer);
  });
}
