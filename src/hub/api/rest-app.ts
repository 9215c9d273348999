/** The REST API (v1) as a Hono app: built apart from listening, so tests can call it in-process. */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { z } from 'zod';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import { createEnrollmentBody, createJoinTokenBody, enrollBody } from '../../protocol/api.ts';
import { INVENTORY_SECTIONS, NOOP_PATH, type InventorySection } from '../../protocol/inventory.ts';
import type { Store } from '../../store/store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Enrollment } from '../enrollment.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { rotateNodeKey } from '../key-rotation.ts';
import { bearerAuth, type AuthVariables } from './auth.ts';

export interface RestDeps {
  store: Store;
  registry: NodeRegistry;
  inventory: InventoryCache;
  enrollment: Enrollment;
  log: Logger;
}

const MAX_BODY = 64 * 1024;

async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new DockfleetError('bad_request', 'request body must be JSON');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DockfleetError('validation_failed', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export function buildRestApp(deps: RestDeps): Hono<{ Variables: AuthVariables }> {
  const { store, registry, inventory, enrollment, log } = deps;
  const app = new Hono<{ Variables: AuthVariables }>();

  app.onError((err, c) => {
    const e = toDockfleetError(err);
    if (e.code === 'internal') log.error({ err }, 'request failed');
    // The rest of a refused body is never read, so the connection cannot be reused.
    if (e.code === 'payload_too_large') c.header('connection', 'close');
    return c.json(e.toJSON(), e.status as 400);
  });
  app.notFound((c) => c.json(new DockfleetError('not_found', `no route ${c.req.method} ${c.req.path}`).toJSON(), 404));
  app.use(
    '*',
    bodyLimit({ maxSize: MAX_BODY, onError: () => { throw new DockfleetError('payload_too_large', `request body exceeds ${MAX_BODY} bytes`); } }),
  );

  app.get('/healthz', (c) => c.json({ ok: true }));

  // Enrollment is authenticated by the code itself, not by a bearer token.
  app.post('/api/v1/enroll', async (c) => {
    const body = await parseBody(c, enrollBody);
    const node = await enrollment.enroll(body);
    log.info({ node: node.name, state: node.state }, 'node enrolled');
    return c.json({ name: node.name, status: registry.status(node) }, 201);
  });

  app.use('/api/*', bearerAuth(store));

  app.get('/api/v1/nodes', (c) => c.json(registry.list()));
  app.get('/api/v1/nodes/:name', (c) => c.json(registry.view(registry.require(c.req.param('name')))));

  for (const section of INVENTORY_SECTIONS) {
    app.get(`/api/v1/nodes/:name/${section}`, (c) => {
      const node = registry.require(c.req.param('name'));
      const current = inventory.section(node.id, section as InventorySection);
      if (current) c.header('last-modified', new Date(current.updatedAt).toUTCString());
      return c.json(current?.items ?? []);
    });
  }

  app.post('/api/v1/enrollments', async (c) => {
    const body = await parseBody(c, createEnrollmentBody);
    return c.json(await enrollment.createCode(body.name, body.ttlSeconds), 201);
  });
  app.post('/api/v1/join-tokens', async (c) => {
    const body = await parseBody(c, createJoinTokenBody);
    return c.json(await enrollment.createJoinToken(body.ttlSeconds), 201);
  });

  app.post('/api/v1/nodes/:name/approve', async (c) => c.json(registry.view(await registry.approve(c.req.param('name')))));
  app.post('/api/v1/nodes/:name/revoke', async (c) => c.json(registry.view(await registry.revoke(c.req.param('name')))));
  app.post('/api/v1/nodes/:name/rotate', async (c) => c.json(await rotateNodeKey(registry, store, c.req.param('name'))));

  /** Round trip through the node's agent without touching its engine (diagnostics, benches). */
  app.get('/api/v1/nodes/:name/ping', async (c) => {
    const link = registry.requireLink(c.req.param('name'));
    const started = process.hrtime.bigint();
    const res = await link.request({ method: 'GET', path: NOOP_PATH, timeoutMs: 10_000 });
    res.stream.resume();
    const micros = Number((process.hrtime.bigint() - started) / 1000n);
    return c.json({ status: res.status, roundTripMicros: micros });
  });

  return app;
}
