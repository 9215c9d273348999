/**
 * The edge's certificates over REST: `GET /api/v1/certificates` (supplied and ACME ones, never
 * a key; anyone signed in), `POST /api/v1/certificates {certPem, keyPem}` (admin: a supplied
 * certificate, wildcards included, served from the next handshake) and
 * `DELETE /api/v1/certificates/ID` (admin). The REST audit middleware records both changes
 * (method and path only: the body, and so the key, never reaches the audit log).
 */
import type { Context, Hono } from 'hono';
import type { ZodType } from 'zod';
import { z } from 'zod';
import { addCertificateBody, certificateView } from '../../protocol/ingress.ts';
import { describeRoutes } from '../openapi/operations.ts';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { EdgeCertificates } from '../edge/certs/edge-certificates.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: ZodType<T>) => Promise<T>;

describeRoutes('edge', [
  { method: 'get', path: '/api/v1/certificates', summary: "The edge's certificates (never a key)", responses: { 200: z.array(certificateView) } },
  { method: 'post', path: '/api/v1/certificates', summary: 'Add a supplied certificate and its key (admin)', body: addCertificateBody, responses: { 201: certificateView } },
  { method: 'delete', path: '/api/v1/certificates/{id}', summary: 'Remove a certificate (admin)', responses: { 200: certificateView.extend({ removed: z.literal(true) }) } },
]);

export function certificateRoutes(app: App, book: EdgeCertificates, parse: Parse): void {
  app.get('/api/v1/certificates', (c) => c.json(book.list()));

  app.post('/api/v1/certificates', async (c) => {
    assertAdmin(c.get('principal'));
    const body = await parse(c, addCertificateBody);
    return c.json(await book.addSupplied(body.certPem, body.keyPem), 201);
  });

  app.delete('/api/v1/certificates/:id', async (c) => {
    assertAdmin(c.get('principal'));
    return c.json({ ...(await book.remove(c.req.param('id'))), removed: true });
  });
}
