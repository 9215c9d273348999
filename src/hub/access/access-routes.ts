/**
 * People and access over REST (admin only, every change audited by the REST app's audit step):
 * users listed, their role and scope changed, disabled and enabled, a temporary password set
 * (shown once); node grants listed, added and removed; pending enrollment codes and join
 * tokens listed (never their secret) and revoked. Grants take effect on the next call.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { done, grantView as grantAnswer, pendingCode, USER_ROLES, userChanged, userSummary } from '../../protocol/api.ts';
import { describeRoutes } from '../openapi/operations.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import type { Store, UserRecord } from '../../store/store.ts';
import { ADMIN_USER_ID } from '../admin-token.ts';
import { hashPassword } from '../auth/passwords.ts';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';

type App = Hono<{ Variables: AuthVariables }>;
type C = Context<{ Variables: AuthVariables }>;
type Parse = <T>(c: C, schema: z.ZodType<T>) => Promise<T>;

const LABEL_PART = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
export const changeUserBody = z
  .object({
    role: z.enum(USER_ROLES).optional(),
    /** true: no global role; the user sees only the nodes its grants cover (a "customer"). */
    scoped: z.boolean().optional(),
    disabled: z.boolean().optional(),
  })
  .strict();
export const createGrantBody = z
  .object({
    node: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a node name')
      .optional(),
    /** key=value, matched against the node's labels (`dockfleet label`). */
    selector: z
      .string()
      .max(200)
      .regex(/^[^=]+=[^=]*$/, 'a selector is key=value')
      .optional(),
    role: z.enum(['operator', 'viewer']),
  })
  .strict()
  .refine((b) => (b.node === undefined) !== (b.selector === undefined), 'give either node or selector');

/** A code's id in answers: the first 16 hex digits of its secret's hash (never the secret). */
const codeId = (secretHash: string): string => secretHash.slice(0, 16);

describeRoutes('access', [
  { method: 'get', path: '/api/v1/users', summary: 'Every user with its role, scope and grants (admin)', responses: { 200: z.array(userSummary) } },
  { method: 'patch', path: '/api/v1/users/{name}', summary: "Change a user's role or scope, disable or enable it (admin)", body: changeUserBody, responses: { 200: userChanged } },
  {
    method: 'post',
    path: '/api/v1/users/{name}/password',
    summary: "Set a temporary password, shown once; the user's sessions end (admin)",
    responses: { 200: z.object({ name: z.string(), temporaryPassword: z.string() }) },
  },
  { method: 'get', path: '/api/v1/users/{name}/grants', summary: "A user's node grants (admin)", responses: { 200: z.array(grantAnswer) } },
  { method: 'post', path: '/api/v1/users/{name}/grants', summary: 'Grant a role on a node or on nodes with a label (admin)', body: createGrantBody, responses: { 201: grantAnswer } },
  { method: 'delete', path: '/api/v1/users/{name}/grants/{id}', summary: 'Remove a grant (admin)', responses: { 200: done('removed') } },
  { method: 'get', path: '/api/v1/enrollments', summary: 'Pending enrollment codes and join tokens, never their secret (admin)', responses: { 200: z.array(pendingCode) } },
  { method: 'delete', path: '/api/v1/enrollments/{id}', summary: 'Revoke a pending code or join token (admin)', responses: { 200: done('revoked') } },
]);

export function accessRoutes(app: App, deps: { store: Store; parse: Parse }): void {
  const { store, parse } = deps;
  const admin = (c: C): void => assertAdmin(c.get('principal'));
  const userNamed = async (c: C): Promise<UserRecord> => {
    const user = await store.getUserByName(c.req.param('name') ?? '');
    if (!user) throw new DockfleetError('not_found', `no user named ${c.req.param('name')}`);
    return user;
  };

  app.get('/api/v1/users', async (c) => {
    admin(c);
    const users = await store.access.listUsers();
    return c.json(
      await Promise.all(
        users.map(async (u) => ({
          name: u.name,
          role: u.role,
          scoped: u.scoped,
          hasPassword: u.hasPassword,
          builtIn: u.id === ADMIN_USER_ID,
          createdAt: new Date(u.createdAt).toISOString(),
          disabledAt: u.disabledAt === null ? null : new Date(u.disabledAt).toISOString(),
          grants: (await store.access.listGrants(u.id)).map(grantView),
        })),
      ),
    );
  });

  app.patch('/api/v1/users/:name', async (c) => {
    admin(c);
    const user = await userNamed(c);
    const body = await parse(c, changeUserBody);
    const me = c.get('principal');
    if ((user.id === me.userId || user.id === ADMIN_USER_ID) && (body.disabled === true || body.scoped === true || (body.role !== undefined && body.role !== 'admin'))) {
      throw new DockfleetError('invalid_state', "you cannot disable, scope or demote yourself or the hub's admin token");
    }
    const scoped = body.scoped ?? (await store.access.isScoped(user.id));
    const role = scoped ? 'viewer' : (body.role ?? user.role);
    if (scoped && body.role === 'admin') throw new DockfleetError('validation_failed', 'a scoped user has no global role; give it grants instead');
    await store.access.setUserAccess(user.id, role, scoped);
    if (body.disabled !== undefined) await store.access.setUserDisabled(user.id, body.disabled ? Date.now() : null);
    return c.json({ name: user.name, role, scoped, disabled: body.disabled ?? user.disabledAt !== null });
  });

  /** A new temporary password, shown once; the user's sessions end. */
  app.post('/api/v1/users/:name/password', async (c) => {
    admin(c);
    const user = await userNamed(c);
    const password = randomBytes(15).toString('base64url');
    await store.setPasswordHash(user.id, await hashPassword(password));
    await store.deleteSessionsOfUser(user.id);
    return c.json({ name: user.name, temporaryPassword: password });
  });

  app.get('/api/v1/users/:name/grants', async (c) => {
    admin(c);
    return c.json((await store.access.listGrants((await userNamed(c)).id)).map(grantView));
  });

  app.post('/api/v1/users/:name/grants', async (c) => {
    admin(c);
    const user = await userNamed(c);
    const body = await parse(c, createGrantBody);
    const [key, value] = body.selector === undefined ? [null, null] : splitSelector(body.selector);
    const grant = { id: randomUUID(), userId: user.id, node: body.node ?? null, labelKey: key, labelValue: value, role: body.role, createdAt: Date.now() };
    await store.access.insertGrant(grant);
    return c.json(grantView(grant), 201);
  });

  app.delete('/api/v1/users/:name/grants/:id', async (c) => {
    admin(c);
    const user = await userNamed(c);
    if (!(await store.access.deleteGrant(user.id, c.req.param('id')))) throw new DockfleetError('not_found', 'no such grant');
    return c.json({ removed: true });
  });

  app.get('/api/v1/enrollments', async (c) => {
    admin(c);
    const codes = await store.access.listPendingCodes(Date.now());
    return c.json(
      codes.map((k) => ({
        id: codeId(k.secretHash),
        kind: k.kind === 'join' ? 'join-token' : 'code',
        node: k.nodeName,
        createdAt: new Date(k.createdAt).toISOString(),
        expiresAt: new Date(k.expiresAt).toISOString(),
      })),
    );
  });

  app.delete('/api/v1/enrollments/:id', async (c) => {
    admin(c);
    const id = c.req.param('id');
    const now = Date.now();
    const match = /^[0-9a-f]{16}$/.test(id) ? (await store.access.listPendingCodes(now)).find((k) => codeId(k.secretHash) === id) : undefined;
    if (!match || !(await store.access.revokeCode(match.secretHash, now))) throw new DockfleetError('not_found', 'no pending code or join token with that id');
    return c.json({ revoked: true });
  });
}

function splitSelector(selector: string): [string, string] {
  const at = selector.indexOf('=');
  const [key, value] = [selector.slice(0, at).trim(), selector.slice(at + 1).trim()];
  if (!LABEL_PART.test(key) || (value !== '' && !LABEL_PART.test(value))) throw new DockfleetError('validation_failed', `selector: "${selector}" is not key=value`);
  return [key, value];
}

function grantView(g: { id: string; node: string | null; labelKey: string | null; labelValue: string | null; role: string; createdAt: number }) {
  return { id: g.id, node: g.node, selector: g.labelKey === null ? null : `${g.labelKey}=${g.labelValue}`, role: g.role, createdAt: new Date(g.createdAt).toISOString() };
}
