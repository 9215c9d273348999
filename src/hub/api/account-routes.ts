/**
 * Accounts for people: first-run setup (no default password anywhere; it needs the one-time
 * code from the hub's machine), sign-in with a session cookie (rate-limited before the password
 * is checked; known devices pass an account's back-off), sign-out, password change (ends the
 * user's other sessions), and personal API tokens (shown once, stored hashed, revocable).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Hono } from 'hono';
import { DockfleetError } from '../../protocol/errors.ts';
import { changePasswordBody, createUserBody, credentialsBody, done, meView, signedInUser, tokenSummary } from '../../protocol/api.ts';
import { z } from 'zod';
import { describeRoutes } from '../openapi/operations.ts';
import type { Store } from '../../store/store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Attempt, Reservation } from '../auth/attempt-limiter.ts';
import { KnownDevices } from '../auth/known-devices.ts';
import { CLEARED_ON_SUCCESS, LoginLimiter } from '../auth/login-limiter.ts';
import { hashPassword, passwordProblem, verifyPassword } from '../auth/passwords.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { clearedSessionCookie, createSession, sessionCookie } from '../auth/sessions.ts';
import { setupBody, type SetupCode } from '../auth/setup-code.ts';
import type { AuditLog } from '../audit-log.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: import('zod').ZodType<T>) => Promise<T>;

/** The TCP peer's address. Forwarding headers are never trusted: anyone can send them. */
function clientAddress(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket.remoteAddress ?? 'unknown';
}

/** The reserved attempt, or a 429 with Retry-After. */
function admitted(c: Context, reservation: Reservation, what: string): Attempt {
  if (reservation.ok) return reservation.attempt;
  const seconds = Math.max(1, Math.ceil(reservation.retryAfterMs / 1000));
  c.header('retry-after', String(seconds));
  throw new DockfleetError('rate_limited', `too many failed ${what}; try again in ${seconds} s`);
}

describeRoutes('accounts', [
  { method: 'get', path: '/api/v1/setup', summary: 'Whether first-run setup is still needed', responses: { 200: z.object({ needed: z.boolean() }) }, public: true },
  { method: 'post', path: '/api/v1/setup', summary: "First-run setup: the first admin, with the hub machine's setup code", body: setupBody, responses: { 201: signedInUser }, public: true },
  { method: 'post', path: '/api/v1/session', summary: 'Sign in (sets the session cookie)', body: credentialsBody, responses: { 200: signedInUser }, public: true },
  { method: 'get', path: '/api/v1/me', summary: 'The caller: name, role and grants', responses: { 200: meView } },
  { method: 'delete', path: '/api/v1/session', summary: 'Sign out', responses: { 200: done('signedOut') } },
  {
    method: 'post',
    path: '/api/v1/me/password',
    summary: "Change the caller's password (ends its other sessions)",
    body: changePasswordBody,
    responses: { 200: z.object({ changed: z.literal(true), otherSessionsEnded: z.number().int() }) },
  },
  { method: 'get', path: '/api/v1/tokens', summary: "The caller's API tokens (never the secret)", responses: { 200: z.array(tokenSummary) } },
  { method: 'delete', path: '/api/v1/tokens/{id}', summary: "Revoke one of the caller's tokens", responses: { 200: done('revoked') } },
]);

/** Routes that work without signing in: setup and sign-in. */
export function publicAccountRoutes(app: App, deps: { store: Store; audit: AuditLog; log: Logger; parse: Parse; setupCode: SetupCode | null; limiter?: LoginLimiter; devices?: KnownDevices }): void {
  const { store, audit, log, parse } = deps;
  const limiter = deps.limiter ?? new LoginLimiter();
  const devices = deps.devices ?? new KnownDevices();
  // A hash to compare against when the user does not exist, so timing does not tell.
  const decoy = hashPassword(randomUUID());

  app.get('/api/v1/setup', async (c) => c.json({ needed: !(await store.hasPasswordUser()) }));

  app.post('/api/v1/setup', async (c) => {
    const body = await parse(c, setupBody);
    const setup = deps.setupCode;
    if (await store.hasPasswordUser()) {
      await setup?.consume();
      throw new DockfleetError('invalid_state', 'setup is done already; sign in instead');
    }
    if (!setup) throw new DockfleetError('setup_code_invalid', 'this hub has no setup code; start it with `dockfleet hub`');
    const name = createUserBody.shape.name.safeParse(body.username);
    if (!name.success) throw new DockfleetError('validation_failed', `username: ${name.error.issues[0]?.message ?? 'invalid'}`);
    const problem = passwordProblem(body.password);
    if (problem) throw new DockfleetError('validation_failed', `password: ${problem}`);
    const attempt = admitted(c, limiter.reserveSetup(clientAddress(c)), 'setup codes');
    try {
      setup.claim(body.setupCode);
    } catch (err) {
      // Only a wrong or missing code counts as a guess.
      if (!(err instanceof DockfleetError && err.code === 'setup_code_invalid')) attempt.succeeded();
      throw err;
    }
    attempt.succeeded();
    const user = { id: randomUUID(), name: name.data, role: 'admin' as const, createdAt: Date.now(), disabledAt: null };
    try {
      if ((await store.getUserByName(name.data)) !== null) throw new DockfleetError('name_taken', `a user named ${name.data} already exists`);
      if (!(await store.createFirstPasswordUser(user, await hashPassword(body.password)))) {
        throw new DockfleetError('invalid_state', 'setup is done already; sign in instead');
      }
    } catch (err) {
      setup.release();
      throw err;
    }
    await setup.consume();
    const session = await createSession(store, user.id);
    c.header('set-cookie', sessionCookie(session.id));
    c.header('set-cookie', devices.cookieFor(user.name), { append: true });
    audit.record({ user: user.name, node: null, method: 'POST', path: '/api/v1/setup', status: 201 });
    log.info({ user: user.name }, 'first admin account created; the setup code is used up');
    return c.json({ name: user.name, role: user.role }, 201);
  });

  app.post('/api/v1/session', async (c) => {
    const body = await parse(c, credentialsBody);
    const account = body.username.toLowerCase();
    const device = devices.deviceOf(c.req.header('cookie'), account);
    // Counted now, before the slow check: concurrent guesses cannot slip past the limit.
    const attempt = admitted(c, limiter.reserveSignIn({ address: clientAddress(c), account, device }), 'sign-ins');
    const user = await store.getUserByName(body.username);
    const hash = user && user.disabledAt === null ? await store.getPasswordHash(user.id) : null;
    const ok = await verifyPassword(body.password, hash ?? (await decoy));
    if (!user || !hash || !ok) {
      audit.record({ user: body.username.slice(0, 64), node: null, method: 'POST', path: '/api/v1/session', status: 401 });
      throw new DockfleetError('unauthenticated', 'wrong username or password');
    }
    attempt.succeeded(CLEARED_ON_SUCCESS);
    const session = await createSession(store, user.id);
    c.header('set-cookie', sessionCookie(session.id));
    c.header('set-cookie', devices.cookieFor(user.name), { append: true });
    return c.json({ name: user.name, role: user.role });
  });
}

/** Routes for a signed-in user (after the auth middleware). */
export function accountRoutes(app: App, deps: { store: Store; parse: Parse }): void {
  const { store, parse } = deps;

  app.get('/api/v1/me', (c) => {
    const p = c.get('principal');
    // scoped: the user sees only its granted nodes (the UI offers no fleet-wide pages); absent when false.
    // grants: node or label key/value and role (no ids or secrets), so the UI evaluates the role per node as the hub does.
    const grants = p.access.grants.map((g) => ({ node: g.node, labelKey: g.labelKey, labelValue: g.labelValue, role: g.role }));
    return c.json({ name: p.name, role: p.role, via: p.via, ...(p.access.scoped ? { scoped: true } : {}), grants });
  });

  app.delete('/api/v1/session', async (c) => {
    const p = c.get('principal');
    if (p.sessionHash) await store.deleteSession(p.sessionHash);
    c.header('set-cookie', clearedSessionCookie());
    return c.json({ signedOut: true });
  });

  app.post('/api/v1/me/password', async (c) => {
    const p = c.get('principal');
    const body = await parse(c, changePasswordBody);
    const hash = await store.getPasswordHash(p.userId);
    if (!hash || !(await verifyPassword(body.current, hash))) throw new DockfleetError('unauthenticated', 'the current password is wrong');
    const problem = passwordProblem(body.next);
    if (problem) throw new DockfleetError('validation_failed', `password: ${problem}`);
    await store.setPasswordHash(p.userId, await hashPassword(body.next));
    const ended = await store.deleteSessionsOfUser(p.userId, p.sessionHash);
    return c.json({ changed: true, otherSessionsEnded: ended });
  });

  app.get('/api/v1/tokens', async (c) => {
    const tokens = await store.access.listTokenSummaries(c.get('principal').userId);
    const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());
    return c.json(tokens.map((t) => ({ id: t.tokenHash, name: t.name, createdAt: iso(t.createdAt), expiresAt: iso(t.expiresAt), lastUsedAt: iso(t.lastUsedAt) })));
  });

  app.delete('/api/v1/tokens/:id', async (c) => {
    if (!(await store.revokeToken(c.req.param('id'), c.get('principal').userId, Date.now()))) {
      throw new DockfleetError('not_found', 'no such token of yours');
    }
    return c.json({ revoked: true });
  });
}
