/**
 * Registry credentials over REST: `GET /api/v1/registries` (anyone signed in: hosts and
 * usernames, never secrets), `POST /api/v1/registries` and `DELETE /api/v1/registries/:id`
 * (admins). The audit log records the call (path and status), never the body.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { RegistryAuth } from './registry-auth.ts';
import { describeRoutes } from '../openapi/operations.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: z.ZodType<T>) => Promise<T>;

/** A registry host: `name[.domain][:port]`, as the first part of an image reference. */
const SERVER = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$/;

export const createRegistryBody = z
  .object({
    server: z.string().regex(SERVER, 'a registry host such as registry.example.com or 127.0.0.1:5000'),
    username: z.string().min(1).max(256),
    password: z.string().min(1).max(4096),
  })
  .strict();

const registryView = z.object({ id: z.string(), server: z.string(), username: z.string(), createdBy: z.string(), createdAt: z.string() });
describeRoutes('registries', [
  { method: 'get', path: '/api/v1/registries', summary: 'Registry credentials: hosts and usernames, never secrets', responses: { 200: z.array(registryView) } },
  { method: 'post', path: '/api/v1/registries', summary: 'Add a registry credential (admin)', body: createRegistryBody, responses: { 201: registryView } },
  { method: 'delete', path: '/api/v1/registries/{id}', summary: 'Remove a registry credential (admin)', responses: { 200: z.object({ id: z.string(), removed: z.literal(true) }) } },
]);

export function registryRoutes(app: App, auth: RegistryAuth, parse: Parse): void {
  app.get('/api/v1/registries', async (c) => c.json(await auth.list()));
  app.post('/api/v1/registries', async (c) => {
    assertAdmin(c.get('principal'));
    const body = await parse(c, createRegistryBody);
    return c.json(await auth.add(body, c.get('principal').name), 201);
  });
  app.delete('/api/v1/registries/:id', async (c) => {
    assertAdmin(c.get('principal'));
    await auth.remove(c.req.param('id'));
    return c.json({ id: c.req.param('id'), removed: true });
  });
}
