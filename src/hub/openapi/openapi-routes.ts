/**
 * `GET /api/v1/openapi.json`: the REST API's OpenAPI 3.1 document (document.ts), for anyone
 * signed in, like the rest of /api/v1 (a client generator or Swagger UI passes its bearer token).
 * Built once, on the first call, from the operations every route module declared when it loaded.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { openApiDocument } from './document.ts';
import { describeRoutes } from './operations.ts';
import './core-operations.ts';

describeRoutes('meta', [
  {
    method: 'get',
    path: '/api/v1/openapi.json',
    summary: 'This document: the REST API in OpenAPI 3.1',
    responses: { 200: z.looseObject({ openapi: z.string().regex(/^3\.1\.\d+$/), paths: z.record(z.string(), z.unknown()) }) },
  },
]);

export function openApiRoutes(app: Hono<{ Variables: AuthVariables }>): void {
  let document: Record<string, unknown> | null = null;
  app.get('/api/v1/openapi.json', (c) => c.json((document ??= openApiDocument())));
}
