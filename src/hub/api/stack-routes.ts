/**
 * REST routes for node labels and stacks: deploy (validated before anything is queued),
 * rollback, removal, and the views. Changes need an admin or operator; the REST audit
 * middleware records each change. Secret values are taken in and never given back.
 */
import type { Context, Hono } from 'hono';
import type { ZodType } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { z } from 'zod';
import {
  composeCheck,
  deployStackBody,
  rollbackStackBody,
  rolloutStartedView,
  rolloutViewSchema,
  setNodeLabelsBody,
  stackDetailView,
  stackListItemView,
  stackRevisionDetail,
  stackRevisionSummary,
  validateComposeBody,
} from '../../protocol/stack-api.ts';
import { nodeView } from '../../protocol/api.ts';
import { describeRoutes } from '../openapi/operations.ts';
import { STACK_NAME } from '../../protocol/stacks.ts';
import type { Principal } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { NodeLabels } from '../stacks/node-labels.ts';
import { ComposeRefused, type StackService } from '../stacks/stack-service.ts';
import type { StackViews } from '../stacks/stack-views.ts';

export interface StackRoutesDeps {
  registry: NodeRegistry;
  labels: NodeLabels;
  stacks: StackService;
  views: StackViews;
}

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: ZodType<T>) => Promise<T>;

/** A deploy carries the Compose file and the files it names: more than the API's usual 64 KiB. */
export const STACK_DEPLOY_MAX_BODY = 8 * 1024 * 1024;
const DEPLOY_PATH = /^\/api\/v1\/stacks\/[^/]+\/(deploy|validate)$/;
export const isStackDeployPath = (path: string): boolean => DEPLOY_PATH.test(path);
/** Checks a Compose file and changes nothing: a POST the audit log leaves out. */
const VALIDATE_PATH = /^\/api\/v1\/stacks\/[^/]+\/validate$/;
export const isReadOnlyPost = (path: string): boolean => VALIDATE_PATH.test(path);

/** Stacks and node labels are fleet-wide: the global role decides (a scoped user has none). */
function assertOperator(principal: Principal): void {
  const role = principal.access.globalRole;
  if (role !== 'admin' && role !== 'operator') throw new DockfleetError('forbidden', 'changing stacks and labels needs an admin or operator');
}

function stackName(c: Context): string {
  const name = c.req.param('name') ?? '';
  if (!STACK_NAME.test(name)) throw new DockfleetError('validation_failed', 'stack names are lowercase letters, digits, dashes and underscores (Compose project names)');
  return name;
}

describeRoutes('stacks', [
  { method: 'put', path: '/api/v1/nodes/{name}/labels', summary: "Set the node's labels (admin or operator)", body: setNodeLabelsBody, responses: { 200: nodeView } },
  { method: 'get', path: '/api/v1/stacks', summary: 'Every stack and where it runs', responses: { 200: z.array(stackListItemView) } },
  { method: 'get', path: '/api/v1/stacks/{name}', summary: 'One stack: its nodes, drift and recent rollouts', responses: { 200: stackDetailView } },
  { method: 'get', path: '/api/v1/stacks/{name}/history', summary: "The stack's revisions (never a secret value)", responses: { 200: z.array(stackRevisionSummary) } },
  { method: 'get', path: '/api/v1/stacks/{name}/revisions/{rev}', summary: 'One revision with its Compose file', responses: { 200: stackRevisionDetail } },
  { method: 'get', path: '/api/v1/stacks/{name}/rollouts/{id}', summary: 'One rollout', responses: { 200: rolloutViewSchema } },
  { method: 'post', path: '/api/v1/stacks/{name}/validate', summary: 'Check a Compose file as a deploy would; nothing is stored', body: validateComposeBody, responses: { 200: composeCheck } },
  { method: 'post', path: '/api/v1/stacks/{name}/deploy', summary: 'Deploy a revision (admin or operator)', body: deployStackBody, responses: { 202: rolloutStartedView } },
  { method: 'post', path: '/api/v1/stacks/{name}/rollback', summary: 'Roll back to an earlier revision (admin or operator)', body: rollbackStackBody, responses: { 202: rolloutStartedView } },
  {
    method: 'delete',
    path: '/api/v1/stacks/{name}',
    summary: 'Remove the stack from its nodes (admin or operator; `?sign=true` for signed jobs)',
    query: z.object({ sign: z.enum(['true', 'false']).optional() }),
    responses: { 202: rolloutStartedView },
  },
]);

export function stackRoutes(app: App, deps: StackRoutesDeps, parse: Parse): void {
  const { registry, labels, stacks, views } = deps;

  app.put('/api/v1/nodes/:name/labels', async (c) => {
    assertOperator(c.get('principal'));
    const node = registry.require(c.req.param('name'));
    const body = await parse(c, setNodeLabelsBody);
    await labels.change(node.name, body.labels);
    registry.emit('changed');
    return c.json(registry.view(node));
  });

  app.get('/api/v1/stacks', async (c) => c.json(await views.list()));
  app.get('/api/v1/stacks/:name', async (c) => c.json(await views.get(stackName(c))));
  app.get('/api/v1/stacks/:name/history', async (c) => c.json(await views.history(stackName(c))));
  app.get('/api/v1/stacks/:name/revisions/:rev', async (c) => {
    const rev = Number(c.req.param('rev'));
    if (!Number.isSafeInteger(rev) || rev < 1) throw new DockfleetError('validation_failed', 'revision must be a positive integer');
    return c.json(await views.revision(stackName(c), rev));
  });
  app.get('/api/v1/stacks/:name/rollouts/:id', async (c) => c.json(await views.rollout(stackName(c), c.req.param('id'))));

  // The Compose editor's check as you type: the hub's own parser and schema, nothing stored.
  app.post('/api/v1/stacks/:name/validate', async (c) => {
    const name = stackName(c);
    const body = await parse(c, validateComposeBody);
    return c.json({ errors: stacks.validate(name, body) });
  });

  app.post('/api/v1/stacks/:name/deploy', async (c) => {
    const principal = c.get('principal');
    assertOperator(principal);
    const name = stackName(c);
    const body = await parse(c, deployStackBody);
    try {
      return c.json(await stacks.deploy(name, body, principal.name), 202);
    } catch (err) {
      if (!(err instanceof ComposeRefused)) throw err;
      return c.json({ error: { code: err.code, message: err.message, errors: err.errors } }, 400);
    }
  });

  app.post('/api/v1/stacks/:name/rollback', async (c) => {
    const principal = c.get('principal');
    assertOperator(principal);
    const name = stackName(c);
    const body = await parse(c, rollbackStackBody);
    return c.json(await stacks.rollback(name, body.to, body.idempotencyKey, principal.name, body.sign === true), 202);
  });

  app.delete('/api/v1/stacks/:name', async (c) => {
    const principal = c.get('principal');
    assertOperator(principal);
    // `?sign=true`: the removal's jobs wait for the operator's signature (a DELETE has no body).
    return c.json(await stacks.remove(stackName(c), principal.name, c.req.query('sign') === 'true'), 202);
  });
}
