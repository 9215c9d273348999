/**
 * Operator keys over REST (issue 13). Any signed-in user, scoped ones included, keeps a list of
 * the public keys it signs intents with, so people can tell which key is whose:
 *   GET    /api/v1/operator-keys         the caller's keys (`?all=1`: every user's, admins only)
 *   POST   /api/v1/operator-keys         {publicKey, name?}: 201, or 409 for a key on record already
 *   DELETE /api/v1/operator-keys/ID      the caller's key, or anyone's for an admin: marked revoked
 * Changes are audited by the REST app's audit step (path and status, never the body). The list
 * is for people: a host trusts only the keys in its own policy file, which the hub cannot change.
 */
import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { createOperatorKeyBody, OPERATOR_KEY_HINT, type OperatorKeyView } from '../../protocol/operator-keys.ts';
import { publicKeyObject } from '../../lib/intent-keys.ts';
import { OPERATOR_KEY_FINGERPRINT, operatorKeyFingerprint } from '../../lib/operator-key-fingerprint.ts';
import type { Store } from '../../store/store.ts';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { OperatorKeyRecord } from './operator-key-store.ts';
import { z as zod } from 'zod';
import { describeRoutes } from '../openapi/operations.ts';

const keyView = zod.object({ id: zod.string(), publicKey: zod.string(), name: zod.string(), user: zod.string(), createdAt: zod.string(), revokedAt: zod.string().nullable() });
describeRoutes('operator keys', [
  {
    method: 'get',
    path: '/api/v1/operator-keys',
    summary: "The caller's operator keys (`?all=1`: everyone's, admins only)",
    query: zod.object({ all: zod.string().optional() }),
    responses: { 200: zod.array(keyView) },
  },
  { method: 'post', path: '/api/v1/operator-keys', summary: 'Register a public key the caller signs intents with', body: createOperatorKeyBody, responses: { 201: keyView } },
  {
    method: 'delete',
    path: '/api/v1/operator-keys/{id}',
    summary: 'Revoke an operator key',
    responses: { 200: zod.object({ id: zod.string(), revoked: zod.literal(true), revokedAt: zod.string() }) },
  },
]);

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: z.ZodType<T>) => Promise<T>;

const DEFAULT_NAME = 'operator key';

function view(r: OperatorKeyRecord, user: string): OperatorKeyView {
  return {
    id: r.id,
    publicKey: r.publicKey,
    name: r.name,
    user,
    createdAt: new Date(r.createdAt).toISOString(),
    revokedAt: r.revokedAt === null ? null : new Date(r.revokedAt).toISOString(),
  };
}

/** The key form is checked by the schema; this also checks the bytes are an Ed25519 point. */
function assertUsableKey(publicKey: string): void {
  try {
    publicKeyObject(publicKey);
  } catch {
    throw new DockfleetError('validation_failed', `publicKey: not a usable Ed25519 public key; ${OPERATOR_KEY_HINT}`);
  }
}

export function operatorKeyRoutes(app: App, deps: { store: Store; parse: Parse }): void {
  const keys = deps.store.operatorKeys;

  app.get('/api/v1/operator-keys', async (c) => {
    const principal = c.get('principal');
    const all = c.req.query('all');
    if (all !== undefined && all !== '0' && all !== 'false') {
      assertAdmin(principal);
      return c.json((await keys.listAllOperatorKeys()).map((r) => view(r, r.userName)));
    }
    return c.json((await keys.listOperatorKeys(principal.userId)).map((r) => view(r, principal.name)));
  });

  app.post('/api/v1/operator-keys', async (c) => {
    const principal = c.get('principal');
    const body = await deps.parse(c, createOperatorKeyBody);
    assertUsableKey(body.publicKey);
    const record: OperatorKeyRecord = {
      id: operatorKeyFingerprint(body.publicKey),
      userId: principal.userId,
      publicKey: body.publicKey,
      name: body.name ?? DEFAULT_NAME,
      createdAt: Date.now(),
      revokedAt: null,
    };
    if (!(await keys.insertOperatorKey(record))) {
      throw new DockfleetError('conflict', `operator key ${record.id} is registered already (a revoked key cannot come back: make a new one)`);
    }
    return c.json(view(record, principal.name), 201);
  });

  app.delete('/api/v1/operator-keys/:id', async (c) => {
    const principal = c.get('principal');
    const id = c.req.param('id').toLowerCase();
    const record = OPERATOR_KEY_FINGERPRINT.test(id) ? await keys.getOperatorKey(id) : null;
    // Another user's key reads as absent to a non-admin, as one that does not exist.
    if (!record || (record.userId !== principal.userId && principal.role !== 'admin')) {
      throw new DockfleetError('not_found', `no operator key ${id} of yours (see GET /api/v1/operator-keys)`);
    }
    const at = Date.now();
    if (!(await keys.revokeOperatorKey(id, at))) throw new DockfleetError('invalid_state', `operator key ${id} is revoked already`);
    return c.json({ id, revoked: true, revokedAt: new Date(at).toISOString() });
  });
}
