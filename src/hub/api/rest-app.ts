/** The REST API (v1) as a Hono app: built apart from listening, so tests can call it in-process. */
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { accountRoutes, publicAccountRoutes } from './account-routes.ts';
import { jobRoutes } from './job-routes.ts';
import { routeRoutes } from './route-routes.ts';
import { edgeSignInRoutes } from './edge-sign-in-routes.ts';
import { certificateRoutes } from './certificate-routes.ts';
import { alertRoutes } from '../alerts/alert-routes.ts';
import type { Alerts } from '../alerts/alerts.ts';
import { registryRoutes } from '../registry-auth/registry-routes.ts';
import { operatorKeyRoutes } from '../operator-keys/operator-key-routes.ts';
import type { RegistryAuth } from '../registry-auth/registry-auth.ts';
import type { EdgeCertificates } from '../edge/certs/edge-certificates.ts';
import type { EdgeSignIn } from '../edge/access/edge-sign-in.ts';
import type { RouteTable } from '../edge/route-table.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import { eventRoutes } from '../events/event-routes.ts';
import type { FleetEvents } from '../events/fleet-events.ts';
import { STACK_DEPLOY_MAX_BODY, isReadOnlyPost, isStackDeployPath, stackRoutes, type StackRoutesDeps } from './stack-routes.ts';
import type { z } from 'zod';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import { createClientCertBody, createEnrollmentBody, createJoinTokenBody, createTokenBody, createUserBody, enrollBody } from '../../protocol/api.ts';
import { INVENTORY_SECTIONS, NOOP_PATH, type InventorySection } from '../../protocol/inventory.ts';
import type { Store } from '../../store/store.ts';
import type { Logger } from '../../lib/logger.ts';
import { hashToken, newToken } from '../admin-token.ts';
import { type AuditLog, isMutating } from '../audit-log.ts';
import { restAuth, type AuthVariables } from '../auth/rest-auth.ts';
import { restScope } from '../access/rest-scope.ts';
import { accessRoutes } from '../access/access-routes.ts';
import { hashPassword, passwordProblem } from '../auth/passwords.ts';
import { assertAdmin, type Principals } from '../auth/principals.ts';
import type { Enrollment } from '../enrollment.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import { rotateNodeKey } from '../key-rotation.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { issueClientCert, type HubPki } from '../pki.ts';
import type { SetupCode } from '../auth/setup-code.ts';
import { auditRoutes } from '../audit-chain/audit-routes.ts';
import { volumeBackupRoutes } from '../volume-backups/volume-backup-routes.ts';
import { backupPolicyRoutes } from '../volume-backups/backup-policy-routes.ts';
import type { HostRebuilds } from '../rebuild/host-rebuilds.ts';
import type { HubKeptSecrets } from '../volume-backups/hub-kept-secrets.ts';
import { rebuildView, retryRebuildBody } from '../rebuild/rebuild-record.ts';
import { openApiRoutes } from '../openapi/openapi-routes.ts';
import type { AgentUpgrades } from '../releases/agent-upgrades.ts';
import type { ReleaseStore } from '../releases/release-store.ts';
import { RELEASES_PATH, RELEASE_UPLOAD_MAX_BODY, releaseRoutes } from '../releases/release-routes.ts';

export interface RestDeps {
  store: Store;
  registry: NodeRegistry;
  inventory: InventoryCache;
  enrollment: Enrollment;
  principals: Principals;
  audit: AuditLog;
  pki: HubPki;
  log: Logger;
  setupCode: SetupCode | null;
  /** The job queue (hub/jobs/); without it the job routes are absent. */
  jobs?: JobQueue | null;
  /** Node labels and stacks (hub/stacks/); without them those routes are absent. */
  stacks?: StackRoutesDeps | null;
  /** Ingress routes from labels (hub/edge/); without them `GET /api/v1/routes` is absent. */
  routes?: RouteTable | null;
  /** Sign-in hand-off to app hosts on the edge; without it `POST /api/v1/edge/hand-off` is absent. */
  edgeSignIn?: EdgeSignIn | null;
  /** The edge's certificates; without them the /api/v1/certificates routes are absent. */
  edgeCertificates?: EdgeCertificates | null;
  /** Registry credentials for pulls; without them the /api/v1/registries routes are absent. */
  registryAuth?: RegistryAuth | null;
  /** The fleet's Docker events (hub/events/); without them the /api/v1/events routes are absent. */
  events?: FleetEvents | null;
  /** Incidents and receivers (hub/alerts/); without them the alert routes are absent. */
  alerts?: Alerts | null;
  /** Host rebuilds after `enroll NAME --replace` (hub/rebuild/); without them no `rebuild` field or route. */
  rebuilds?: HostRebuilds | null;
  /** Hub-managed backup passwords and policy credentials (volume-backups/hub-kept-secrets.ts). */
  volumeKeys?: HubKeptSecrets | null;
  /** Agent releases and their rollouts (issue 16); null: a hub without --release-key. */
  releases?: { store: ReleaseStore; upgrades: AgentUpgrades } | null;
}

const MAX_BODY = 64 * 1024;
const NODE_IN_PATH = /^\/api\/v1\/nodes\/([^/]+)/;

function parseWith<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new DockfleetError('validation_failed', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new DockfleetError('bad_request', 'request body must be JSON');
  }
  return parseWith(schema, raw);
}

export function buildRestApp(deps: RestDeps): Hono<{ Variables: AuthVariables }> {
  const { store, registry, inventory, enrollment, principals, audit, pki, log } = deps;
  const app = new Hono<{ Variables: AuthVariables }>();
  const admin = (c: Context<{ Variables: AuthVariables }>): void => assertAdmin(c.get('principal'));

  app.onError((err, c) => {
    const e = toDockfleetError(err);
    if (e.code === 'internal') log.error({ err }, 'request failed');
    // The rest of a refused body is never read, so the connection cannot be reused.
    if (e.code === 'payload_too_large') c.header('connection', 'close');
    return c.json(e.toJSON(), e.status as 400);
  });
  app.notFound((c) => c.json(new DockfleetError('not_found', `no route ${c.req.method} ${c.req.path}`).toJSON(), 404));
  const limitTo = (maxSize: number) =>
    bodyLimit({
      maxSize,
      onError: () => {
        throw new DockfleetError('payload_too_large', `request body exceeds ${maxSize} bytes`);
      },
    });
  const [smallBody, deployBody] = [limitTo(MAX_BODY), limitTo(STACK_DEPLOY_MAX_BODY)];
  const releaseBody = limitTo(RELEASE_UPLOAD_MAX_BODY);
  app.use('*', (c, next) => (c.req.path === RELEASES_PATH ? releaseBody : isStackDeployPath(c.req.path) ? deployBody : smallBody)(c, next));

  app.get('/healthz', (c) => c.json({ ok: true }));

  // Enrollment is authenticated by the code itself, not by a bearer token.
  app.post('/api/v1/enroll', async (c) => {
    const body = await parseBody(c, enrollBody);
    const node = await enrollment.enroll(body);
    log.info({ node: node.name, state: node.state }, 'node enrolled');
    // The fleet's release key, which the agent pins for good (issue 16).
    const releaseKey = deps.releases?.store.releaseKey ?? null;
    return c.json({ name: node.name, status: registry.status(node), ...(releaseKey === null ? {} : { releaseKey }) }, 201);
  });

  publicAccountRoutes(app, { store, audit, log, parse: parseBody, setupCode: deps.setupCode });
  app.use('/api/*', restAuth(principals));
  // A change is audited before it runs (or refused with storage_full), its outcome after.
  app.use('/api/*', async (c, next) => {
    if (!isMutating(c.req.method) || isReadOnlyPost(c.req.path)) return next();
    const node = NODE_IN_PATH.exec(c.req.path)?.[1] ?? null;
    const call = await audit.begin({ user: c.get('principal').name, node, method: c.req.method, path: c.req.path });
    await next();
    call.finish(c.res.status);
  });
  // Node scope after the audit's intent, so a refused change is on record too.
  app.use('/api/*', restScope());

  accountRoutes(app, { store, parse: parseBody });
  accessRoutes(app, { store, parse: parseBody });
  operatorKeyRoutes(app, { store, parse: parseBody });
  if (deps.jobs) jobRoutes(app, deps.jobs);
  if (deps.jobs) volumeBackupRoutes(app, { jobs: deps.jobs, registry, kept: deps.volumeKeys ?? undefined }, parseBody);
  if (deps.jobs) backupPolicyRoutes(app, { jobs: deps.jobs, registry, store: store.volumeBackups, kept: deps.volumeKeys ?? undefined }, parseBody);
  releaseRoutes(app, { releases: deps.releases?.store ?? null, upgrades: deps.releases?.upgrades ?? null, parse: parseBody });
  if (deps.stacks) stackRoutes(app, deps.stacks, parseBody);
  if (deps.routes) routeRoutes(app, deps.routes);
  if (deps.edgeSignIn) edgeSignInRoutes(app, deps.edgeSignIn, parseBody);
  if (deps.edgeCertificates) certificateRoutes(app, deps.edgeCertificates, parseBody);
  if (deps.alerts) alertRoutes(app, deps.alerts, parseBody);
  if (deps.events) eventRoutes(app, deps.events, parseWith);
  if (deps.registryAuth) registryRoutes(app, deps.registryAuth, parseBody);

  const withRebuild = <T extends { name: string }>(n: T): T => {
    const rebuild = deps.rebuilds?.view(n.name);
    return rebuild ? { ...n, rebuild: rebuildView(rebuild) } : n;
  };
  app.get('/api/v1/nodes', (c) =>
    c.json(
      registry
        .list()
        .filter((n) => c.get('principal').access.canSee(n.name))
        .map(withRebuild),
    ),
  );
  app.get('/api/v1/nodes/:name/rebuild', (c) => {
    const node = registry.require(c.req.param('name'));
    const rebuild = deps.rebuilds?.view(node.name);
    if (!rebuild) throw new DockfleetError('not_found', `node ${node.name} has not been rebuilt (enroll a replacement with --replace)`);
    return c.json(rebuildView(rebuild));
  });
  // The jobs a rebuild waits on for a signature, with the bodies to sign (rebuild/rebuild-signing.ts).
  app.get('/api/v1/nodes/:name/rebuild/signing', async (c) => {
    const role = c.get('principal').access.globalRole;
    if (role !== 'admin' && role !== 'operator') throw new DockfleetError('forbidden', 'signing jobs needs an admin or operator');
    const node = registry.require(c.req.param('name'));
    if (!deps.rebuilds) throw new DockfleetError('not_found', 'this hub does not rebuild hosts');
    return c.json(await deps.rebuilds.signing(node.name));
  });
  app.post('/api/v1/nodes/:name/rebuild', async (c) => {
    admin(c);
    const node = registry.require(c.req.param('name'));
    if (!deps.rebuilds) throw new DockfleetError('not_found', 'this hub does not rebuild hosts');
    const body = await parseBody(c, retryRebuildBody);
    return c.json(rebuildView(await deps.rebuilds.retry(node.name, body, c.get('principal').name)), 202);
  });
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
    admin(c);
    const body = await parseBody(c, createEnrollmentBody);
    const replace =
      body.replace === true
        ? { ...(body.recoveryCode === undefined ? {} : { recoveryCode: body.recoveryCode }), ...(body.resticPassword === undefined ? {} : { resticPassword: body.resticPassword }) }
        : null;
    return c.json({ ...(await enrollment.createCode(body.name, body.ttlSeconds, replace)), ...(replace ? { replace: true } : {}) }, 201);
  });
  app.post('/api/v1/join-tokens', async (c) => {
    admin(c);
    const body = await parseBody(c, createJoinTokenBody);
    return c.json(await enrollment.createJoinToken(body.ttlSeconds), 201);
  });

  app.post('/api/v1/nodes/:name/approve', async (c) => (admin(c), c.json(registry.view(await registry.approve(c.req.param('name'))))));
  app.post('/api/v1/nodes/:name/revoke', async (c) => (admin(c), c.json(registry.view(await registry.revoke(c.req.param('name'))))));
  app.post('/api/v1/nodes/:name/rotate', async (c) => (admin(c), c.json(await rotateNodeKey(registry, store, c.req.param('name')))));

  /** Round trip through the node's agent without touching its engine (diagnostics, benches). */
  app.get('/api/v1/nodes/:name/ping', async (c) => {
    const link = registry.requireLink(c.req.param('name'));
    const started = process.hrtime.bigint();
    const res = await link.request({ method: 'GET', path: NOOP_PATH, timeoutMs: 10_000 });
    res.stream.resume();
    const micros = Number((process.hrtime.bigint() - started) / 1000n);
    return c.json({ status: res.status, roundTripMicros: micros });
  });

  app.post('/api/v1/users', async (c) => {
    admin(c);
    const body = await parseBody(c, createUserBody);
    if (body.password !== undefined) {
      const problem = passwordProblem(body.password);
      if (problem) throw new DockfleetError('validation_failed', `password: ${problem}`);
    }
    const user = { id: randomUUID(), name: body.name, role: body.role, createdAt: Date.now(), disabledAt: null };
    await store.insertUser(user);
    if (body.password !== undefined) await store.setPasswordHash(user.id, await hashPassword(body.password));
    const token = newToken();
    await store.insertToken({ tokenHash: hashToken(token), name: 'initial', userId: user.id, createdAt: Date.now(), revokedAt: null });
    return c.json({ name: user.name, role: user.role, token }, 201);
  });

  /** A personal API token for the caller, shown once. */
  app.post('/api/v1/tokens', async (c) => {
    const body = await parseBody(c, createTokenBody);
    const token = newToken();
    const tokenHash = hashToken(token);
    const expiresAt = Date.now() + (body.expiresInDays ?? 90) * 86_400_000;
    await store.insertToken({ tokenHash, name: body.name, userId: c.get('principal').userId, createdAt: Date.now(), revokedAt: null });
    await store.access.setTokenExpiry(tokenHash, expiresAt);
    return c.json({ name: body.name, token, expiresAt: new Date(expiresAt).toISOString() }, 201);
  });

  /** Certifies the caller's own public key for the stock docker CLI (`dockfleet docker-env`). */
  app.post('/api/v1/client-certs', async (c) => {
    const body = await parseBody(c, createClientCertBody);
    const principal = c.get('principal');
    let issued: Awaited<ReturnType<typeof issueClientCert>>;
    try {
      issued = await issueClientCert(pki, { commonName: principal.name, publicKeyPem: body.publicKey, ...(body.days ? { days: body.days } : {}) });
    } catch {
      throw new DockfleetError('validation_failed', 'publicKey must be an ECDSA P-256 public key (PEM)');
    }
    await store.insertClientCert({ serial: issued.serialHex, userId: principal.userId, createdAt: Date.now(), expiresAt: issued.notAfter.getTime(), revokedAt: null });
    return c.json({ serial: issued.serialHex, caPem: pki.caCertPem, certPem: issued.certPem, expiresAt: issued.notAfter.toISOString() }, 201);
  });

  app.delete('/api/v1/client-certs/:serial', async (c) => {
    const principal = c.get('principal');
    const serial = c.req.param('serial').toLowerCase();
    const cert = await store.getClientCert(serial);
    if (!cert) throw new DockfleetError('not_found', `no client certificate ${serial}`);
    if (cert.userId !== principal.userId) assertAdmin(principal);
    if (!(await store.revokeClientCert(serial, Date.now()))) throw new DockfleetError('invalid_state', `client certificate ${serial} is already revoked`);
    return c.json({ serial, revoked: true });
  });

  // The audit log, its chain's verdict and each host log's agreement (hub/audit-chain/).
  auditRoutes(app, { store, registry, audit, log, parse: parseWith });
  // The whole API as OpenAPI 3.1, from the operations each route file declares (hub/openapi/).
  openApiRoutes(app);

  return app;
}
