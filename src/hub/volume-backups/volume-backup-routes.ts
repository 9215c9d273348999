/**
 * Volume backups over REST (issue 14): each call files a durable job for the node's agent,
 * which does the work with restic (src/agent/backup/). An admin, or an operator of the node.
 *
 *   POST /api/v1/nodes/NAME/volumes/VOLUME/backups    {repository?, retention?, revealTo?, secretEnv?} → 202 job
 *   POST /api/v1/nodes/NAME/volumes/VOLUME/restores   {repository?, snapshot?, to?, secretEnv?}       → 202 job
 *   POST /api/v1/nodes/NAME/volumes/VOLUME/snapshots  {repository?, secretEnv?}  → 200 {job, snapshots}
 *        (a read carried out as a job: it waits up to 2 minutes for the agent's answer)
 *
 * `repository` omitted: the host's own default (its policy's backups.repository). `secretEnv`
 * (a URL repository's credentials; RESTIC_PASSWORD on a hub-managed host) is sealed into the
 * job's secrets and never given back. An `Idempotency-Key` header makes a repeated call file
 * nothing new. The hub adds what it keeps (hub-kept-secrets.ts): the repository's hub-managed
 * password, made on the first backup to it, sealed in the job and left out of its signed body.
 *
 * `"sign": true` (issue 13, for hosts that require signed intent): the job is filed
 * `awaiting-signature` and the answer adds `signing: {jobs: [{id, node, signedBody}]}`, the exact
 * bytes the host will check; the caller signs them (POST /api/v1/jobs/ID/intent) or declines. A
 * signed snapshots call answers 202 `{job, signing}` at once: the list is the job's result.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { z, type ZodType } from 'zod';
import { DockfleetError } from '../../protocol/errors.ts';
import type { JobKind } from '../../protocol/jobs.ts';
import { fileBackupBody, fileRestoreBody, listSnapshotsBody, VOLUME_NAME, type VolumeJobSpec } from '../../protocol/volume-backup.ts';
import type { AuthVariables } from '../auth/rest-auth.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import { apiJob, type JobView } from '../jobs/job-views.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { HubKeptSecrets } from './hub-kept-secrets.ts';
import { apiJobView, filedJobAnswer } from '../../protocol/stack-api.ts';
import { snapshotSummary } from '../../protocol/volume-backup.ts';
import { describeRoutes } from '../openapi/operations.ts';

type App = Hono<{ Variables: AuthVariables }>;
type Parse = <T>(c: Context, schema: ZodType<T>) => Promise<T>;

const SNAPSHOT_WAIT_MS = 120_000;
const signFlag = { sign: z.boolean().optional() };
const backupBody = fileBackupBody.extend(signFlag);
const restoreBody = fileRestoreBody.extend(signFlag);
const snapshotsBody = listSnapshotsBody.extend(signFlag);

const volumePath = '/api/v1/nodes/{name}/volumes/{volume}';
describeRoutes('volume backups', [
  { method: 'post', path: `${volumePath}/backups`, summary: 'Back the volume up now (files a job; `Idempotency-Key` header honoured)', body: backupBody, responses: { 202: filedJobAnswer } },
  { method: 'post', path: `${volumePath}/restores`, summary: 'Restore the volume from a snapshot (files a job)', body: restoreBody, responses: { 202: filedJobAnswer } },
  {
    method: 'post',
    path: `${volumePath}/snapshots`,
    summary: "List the volume's snapshots (a job; waits up to 2 minutes for the agent)",
    body: snapshotsBody,
    responses: {
      200: z.object({ job: apiJobView, repository: z.string().nullable(), snapshots: z.array(snapshotSummary) }),
      202: z.object({ job: apiJobView, signing: filedJobAnswer.shape.signing }),
    },
  },
]);

export interface VolumeBackupRoutesDeps {
  jobs: JobQueue;
  registry: NodeRegistry;
  kept?: HubKeptSecrets | undefined;
}

function target(c: Context<{ Variables: AuthVariables }>, registry: NodeRegistry): { node: string; volume: string } {
  const node = registry.require(c.req.param('name') ?? '').name;
  const role = c.get('principal').access.roleOn(node);
  if (role !== 'admin' && role !== 'operator') throw new DockfleetError('forbidden', `volume backups on ${node} need an admin or an operator of the node`);
  const volume = c.req.param('volume') ?? '';
  if (!VOLUME_NAME.test(volume)) throw new DockfleetError('validation_failed', 'volume: not a Docker volume name');
  return { node, volume };
}

async function file(
  c: Context<{ Variables: AuthVariables }>,
  deps: VolumeBackupRoutesDeps,
  kind: Extract<JobKind, 'volume-backup' | 'volume-restore' | 'volume-snapshots'>,
  node: string,
  volume: VolumeJobSpec,
  secretEnv: Record<string, string>,
  sign: boolean,
) {
  const { jobs, kept } = deps;
  const key = c.req.header('idempotency-key');
  const files = kept ? await kept.forVolumeJob(node, kind, volume.repository) : {};
  return jobs.file({
    kind,
    node,
    stack: '',
    target: null,
    volume,
    secrets: { env: secretEnv, files },
    idempotencyKey: key ? `volume:${node}:${key}` : `volume:${randomUUID()}`,
    createdBy: c.get('principal').name,
    ...(sign ? { signing: { held: false } } : {}),
  });
}

/** The answer to a filing: the job, and for a signed one the bytes its host will check. */
export async function filedAnswer(jobs: JobQueue, job: JobView, sign: boolean): Promise<Record<string, unknown>> {
  if (!sign) return apiJob(job);
  const signing = job.state === 'awaiting-signature' ? { jobs: [{ id: job.id, node: job.node, signedBody: await jobs.signedBody(job.id) }] } : { jobs: [] };
  return { ...apiJob(job), signing };
}

export function volumeBackupRoutes(app: App, deps: VolumeBackupRoutesDeps, parse: Parse): void {
  const { jobs, registry } = deps;

  app.post('/api/v1/nodes/:name/volumes/:volume/backups', async (c) => {
    const { node, volume } = target(c, registry);
    const body = await parse(c, backupBody);
    const spec: VolumeJobSpec = { volume, repository: body.repository, ...(body.retention ? { retention: body.retention } : {}), ...(body.revealTo ? { revealTo: body.revealTo } : {}) };
    const sign = body.sign === true;
    return c.json(await filedAnswer(jobs, await file(c, deps, 'volume-backup', node, spec, body.secretEnv, sign), sign), 202);
  });

  app.post('/api/v1/nodes/:name/volumes/:volume/restores', async (c) => {
    const { node, volume } = target(c, registry);
    const body = await parse(c, restoreBody);
    const spec: VolumeJobSpec = { volume, repository: body.repository, ...(body.snapshot ? { snapshot: body.snapshot } : {}), ...(body.to ? { to: body.to } : {}) };
    const sign = body.sign === true;
    return c.json(await filedAnswer(jobs, await file(c, deps, 'volume-restore', node, spec, body.secretEnv, sign), sign), 202);
  });

  app.post('/api/v1/nodes/:name/volumes/:volume/snapshots', async (c) => {
    const { node, volume } = target(c, registry);
    const body = await parse(c, snapshotsBody);
    const sign = body.sign === true;
    const filed = await file(c, deps, 'volume-snapshots', node, { volume, repository: body.repository }, body.secretEnv, sign);
    if (sign) return c.json({ job: apiJob(filed), signing: (await filedAnswer(jobs, filed, true)).signing }, 202);
    const timeout = AbortSignal.timeout(SNAPSHOT_WAIT_MS);
    const done = await jobs.wait(filed.id, timeout).catch(() => null);
    if (!done) throw new DockfleetError('node_timeout', `node ${node} did not list the snapshots within ${SNAPSHOT_WAIT_MS / 1000} s (job ${filed.id} stays queued)`);
    const detail = await jobs.get(filed.id);
    if (done.state !== 'succeeded') throw new DockfleetError('invalid_state', `listing the snapshots failed: ${done.error ?? 'no reason given'} (job ${filed.id})`);
    return c.json({ job: apiJob(done), repository: detail?.result?.volume?.repository ?? null, snapshots: detail?.result?.volume?.snapshots ?? [] });
  });
}
