/**
 * REST for agent releases and their rollouts (issue 16): add and list releases (the package as
 * base64 beside its signature document), start an upgrade rollout and watch it. Changes are admin's.
 */
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { assertAdmin } from '../auth/principals.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import { describeRoutes } from '../openapi/operations.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { addReleaseBody, releaseView, rolloutView, startUpgradeBody, type RolloutView } from '../../protocol/releases.ts';
import type { AgentUpgrades } from './agent-upgrades.ts';
import type { ReleaseStore } from './release-store.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: z.ZodType<T>) => Promise<T>;

export const RELEASES_PATH = '/api/v1/releases';
/** Release uploads carry a whole package: their own body limit (rest-app.ts). */
export const RELEASE_UPLOAD_MAX_BODY = 90 * 1024 * 1024;

describeRoutes('releases', [
  { method: 'get', path: '/api/v1/releases', summary: 'Agent releases this hub offers', responses: { 200: z.array(releaseView) } },
  { method: 'post', path: '/api/v1/releases', summary: 'Add an agent release (package and signature; checked against the release key)', body: addReleaseBody, responses: { 201: releaseView } },
  { method: 'get', path: '/api/v1/agent-upgrades', summary: 'Agent upgrade rollouts, newest first', responses: { 200: z.array(rolloutView) } },
  { method: 'post', path: '/api/v1/agent-upgrades', summary: 'Roll an agent release out in waves', body: startUpgradeBody, responses: { 202: rolloutView } },
  { method: 'get', path: '/api/v1/agent-upgrades/{id}', summary: 'One agent upgrade rollout', responses: { 200: rolloutView } },
]);

/** Without a release store (a hub started with no --release-key), the lists are empty and changes refused. */
export function releaseRoutes(app: App, deps: { releases: ReleaseStore | null; upgrades: AgentUpgrades | null; parse: Parse }): void {
  const { releases, upgrades, parse } = deps;
  const missing = (): DockfleetError => new DockfleetError('release_key_missing', 'this hub has no release key (start it with --release-key); it offers no releases');
  app.get(RELEASES_PATH, async (c) => c.json(releases ? await releases.list() : []));
  app.post(RELEASES_PATH, async (c) => {
    assertAdmin(c.get('principal'));
    const body = await parse(c, addReleaseBody);
    if (!releases) throw missing();
    return c.json(await releases.add(Buffer.from(body.package, 'base64'), body.signature), 201);
  });
  // Node-scoped users see only their nodes' steps (a rollout with none of them is hidden).
  const inSight = (c: Context<{ Variables: AuthVariables }>, rollout: RolloutView): RolloutView | null => {
    const access = c.get('principal').access;
    const nodes = rollout.nodes.filter((n) => access.canSee(n.node));
    if (nodes.length === rollout.nodes.length) return rollout;
    return nodes.length === 0 ? null : { ...rollout, nodes };
  };
  app.get('/api/v1/agent-upgrades', (c) => c.json(upgrades ? upgrades.list().flatMap((r) => inSight(c, r) ?? []) : []));
  app.post('/api/v1/agent-upgrades', async (c) => {
    assertAdmin(c.get('principal'));
    const body = await parse(c, startUpgradeBody);
    if (!upgrades) throw missing();
    return c.json(await upgrades.start(body, c.get('principal').name), 202);
  });
  app.get('/api/v1/agent-upgrades/:id', (c) => {
    const found = upgrades?.get(c.req.param('id')) ?? null;
    const rollout = found ? inSight(c, found) : null;
    if (!rollout) throw new DockfleetError('not_found', 'no such agent upgrade');
    return c.json(rollout);
  });
}
