/**
 * Per-volume backup policies over REST (issue 14, items 4–5). An admin, or an operator of the
 * node. Each change files a `volume-policies` job carrying the node's whole set (idempotent:
 * its key is the set's revision), which the agent keeps and carries out on its own clock.
 *
 *   GET    /api/v1/nodes/NAME/volumes/VOLUME/backup-policy  → {policy, status}  (404: none)
 *   PUT    /api/v1/nodes/NAME/volumes/VOLUME/backup-policy  {every, retention?, repository?, verifyEvery?, secretEnv?} → {policy, secretEnvNames, job}
 *   DELETE /api/v1/nodes/NAME/volumes/VOLUME/backup-policy  → {job}  (404: none)
 *   GET    /api/v1/nodes/NAME/volumes/VOLUME/backup-status  → {node, volume, policy, lastBackup, lastVerified, lastVerifiedOkAt}
 *   GET    /api/v1/nodes/NAME/backup-status                 → {node, volumes: [that, per volume with a policy or a recorded backup]}
 * "lastBackup" is the newest backup of the volume, whoever asked for it: the agent's schedule
 * or a job the hub filed (CLI, UI, a rebuild).
 *
 * `secretEnv` (a URL repository's credentials, e.g. AWS_SECRET_ACCESS_KEY) is sealed and sent
 * to the agent in each policies job with the hub-managed repository password
 * (hub-kept-secrets.ts); answers show its names only (`secretEnvNames`). Omitted on a PUT, the
 * ones set before are kept; `{}` removes them.
 */
import type { Context, Hono } from 'hono';
import { z, type ZodType } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import { putPolicyBody, VOLUME_NAME, volumeBackupPolicy, volumeBackupStatusView, type VolumeBackupPolicy } from '../../protocol/volume-backup.ts';
import { filedJobAnswer } from '../../protocol/stack-api.ts';
import { describeRoutes } from '../openapi/operations.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { StatusRecord, VolumeBackupStore } from './volume-backup-store.ts';
import { filedAnswer } from './volume-backup-routes.ts';
import type { HubKeptSecrets } from './hub-kept-secrets.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: ZodType<T>) => Promise<T>;

export interface BackupPolicyRoutesDeps {
  jobs: JobQueue;
  registry: NodeRegistry;
  store: VolumeBackupStore;
  /** Hub-kept passwords and policy environments; without it policies jobs carry no secrets. */
  kept?: HubKeptSecrets | undefined;
}

function target(c: Context<{ Variables: AuthVariables }>, registry: NodeRegistry, write: boolean): { node: string; volume: string } {
  const node = registry.require(c.req.param('name') ?? '').name;
  const access = c.get('principal').access;
  const role = access.roleOn(node);
  if (write ? role !== 'admin' && role !== 'operator' : !access.canSee(node)) {
    throw new DockfleetError('forbidden', `volume backup policies on ${node} need an admin or an operator of the node`);
  }
  const volume = c.req.param('volume') ?? '';
  if (!VOLUME_NAME.test(volume)) throw new DockfleetError('validation_failed', 'volume: not a Docker volume name');
  return { node, volume };
}

/** The status as the node's volume view shows it. */
export function statusView(node: string, volume: string, policy: VolumeBackupPolicy | null, status: StatusRecord | null): Record<string, unknown> {
  const verify = status?.lastVerify ?? null;
  return {
    node,
    volume,
    policy,
    lastBackup: status?.lastBackup ? { ...status.lastBackup, at: new Date(status.lastBackup.at).toISOString() } : null,
    lastVerified: verify ? { ...verify, at: new Date(verify.at).toISOString() } : null,
    lastVerifiedOkAt: status?.lastVerifiedOkAt ? new Date(status.lastVerifiedOkAt).toISOString() : null,
  };
}

const putBody = putPolicyBody.extend({
  sign: z.boolean().optional(),
  secretEnv: z
    .record(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), z.string().min(1).max(8_192))
    .refine((e) => Object.keys(e).length <= 32, 'at most 32 variables')
    .optional(),
});

const policyPath = '/api/v1/nodes/{name}/volumes/{volume}/backup-policy';
describeRoutes('volume backups', [
  {
    method: 'get',
    path: policyPath,
    summary: "The volume's backup policy and status",
    responses: { 200: z.object({ policy: volumeBackupPolicy, secretEnvNames: z.array(z.string()), status: volumeBackupStatusView }) },
  },
  {
    method: 'put',
    path: policyPath,
    summary: "Set the volume's backup policy (files a volume-policies job)",
    body: putBody,
    responses: { 200: z.object({ policy: volumeBackupPolicy, secretEnvNames: z.array(z.string()), job: filedJobAnswer }) },
  },
  {
    method: 'delete',
    path: policyPath,
    summary: "Remove the volume's backup policy (`?sign=true` for a signed job)",
    query: z.object({ sign: z.enum(['true', 'false']).optional() }),
    responses: { 200: z.object({ job: filedJobAnswer }) },
  },
  {
    method: 'get',
    path: '/api/v1/nodes/{name}/backup-status',
    summary: 'Every volume of the node with a policy or a recorded backup',
    responses: { 200: z.object({ node: z.string(), volumes: z.array(volumeBackupStatusView) }) },
  },
  { method: 'get', path: '/api/v1/nodes/{name}/volumes/{volume}/backup-status', summary: "The volume's latest backup and verification", responses: { 200: volumeBackupStatusView } },
]);

/** Files the node's whole policy set at this revision (the same revision files nothing new); signed: held for the signature. */
async function sendPolicies(deps: BackupPolicyRoutesDeps, node: string, revision: number, by: string, sign: boolean) {
  const policies = (await deps.store.policies(node)).map((r) => r.policy);
  const files = deps.kept ? await deps.kept.forPolicies(node, policies) : {};
  const job = await deps.jobs.file({
    kind: 'volume-policies',
    node,
    stack: '',
    target: null,
    secrets: { env: {}, files },
    policies: { revision, policies },
    idempotencyKey: `volume-policies:${node}:${revision}`,
    createdBy: by,
    ...(sign ? { signing: { held: false } } : {}),
  });
  return filedAnswer(deps.jobs, job, sign);
}

export function backupPolicyRoutes(app: App, deps: BackupPolicyRoutesDeps, parse: Parse): void {
  const { registry, store } = deps;
  const path = '/api/v1/nodes/:name/volumes/:volume/backup-policy';
  const find = async (node: string, volume: string) => (await store.policies(node)).find((r) => r.volume === volume)?.policy ?? null;

  app.get(path, async (c) => {
    const { node, volume } = target(c, registry, false);
    const policy = await find(node, volume);
    if (!policy) throw new DockfleetError('not_found', `volume ${volume} on ${node} has no backup policy`);
    return c.json({ policy, secretEnvNames: (await deps.kept?.policyEnvNames(node, volume)) ?? [], status: statusView(node, volume, policy, await store.status(node, volume)) });
  });

  app.put(path, async (c) => {
    const { node, volume } = target(c, registry, true);
    const { sign, secretEnv, ...body } = await parse(c, putBody);
    if (secretEnv !== undefined && Object.keys(secretEnv).length > 0 && !deps.kept) throw new DockfleetError('validation_failed', 'secretEnv: this hub keeps no secrets for backup policies');
    const was = await find(node, volume);
    // An update keeps when the policy was first set: the verification alert counts from there.
    const policy: VolumeBackupPolicy = { volume, ...body, setAt: was?.setAt ?? Date.now() };
    const by = c.get('principal').name;
    if (secretEnv !== undefined) await deps.kept?.setPolicyEnv(node, volume, secretEnv);
    const revision = await store.putPolicy({ node, volume, policy, setBy: by });
    const job = await sendPolicies(deps, node, revision, by, sign === true);
    return c.json({ policy, secretEnvNames: (await deps.kept?.policyEnvNames(node, volume)) ?? [], job });
  });

  app.delete(path, async (c) => {
    const { node, volume } = target(c, registry, true);
    const revision = await store.deletePolicy(node, volume);
    if (revision === null) throw new DockfleetError('not_found', `volume ${volume} on ${node} has no backup policy`);
    await deps.kept?.setPolicyEnv(node, volume, null);
    return c.json({ job: await sendPolicies(deps, node, revision, c.get('principal').name, c.req.query('sign') === 'true') });
  });

  app.get('/api/v1/nodes/:name/backup-status', async (c) => {
    const node = registry.require(c.req.param('name') ?? '').name;
    if (!c.get('principal').access.canSee(node)) throw new DockfleetError('forbidden', `volume backups on ${node} need access to the node`);
    const policies = new Map((await store.policies(node)).map((r) => [r.volume, r.policy]));
    const statuses = new Map((await store.statuses(node)).map((s) => [s.volume, s]));
    const volumes = [...new Set([...policies.keys(), ...statuses.keys()])].sort();
    return c.json({ node, volumes: volumes.map((v) => statusView(node, v, policies.get(v) ?? null, statuses.get(v) ?? null)) });
  });

  app.get('/api/v1/nodes/:name/volumes/:volume/backup-status', async (c) => {
    const { node, volume } = target(c, registry, false);
    return c.json(statusView(node, volume, await find(node, volume), await store.status(node, volume)));
  });
}
