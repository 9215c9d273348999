/**
 * Volume backups as the UI reads and files them (issue 14): the hub's per-volume routes, the
 * shapes they answer with, the "not verified for a day" rule (the same one as the hub's
 * `backup-unverified` alert), and repositories typed as text ("/srv/backups", "hub", a restic URL).
 */
import { ApiError, apiNodePath, del, get, json, post } from './api.ts';
import { fleet } from './live.ts';
import { loadBrowserKey, type BrowserKey } from './operator-key.ts';
import { session } from './session.ts';
import { signedIntentOf, signingBlock, useSigningBlock } from './signing.ts';
import type { JobDetail, JobView } from './types.ts';
import type { BackupRepository, BackupRetention, SnapshotSummary, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';

export type { BackupRepository, BackupRetention, SnapshotSummary, VolumeBackupPolicy };

/** One outcome as the hub answers it (times as ISO strings). */
export interface BackupOutcomeView {
  at: string;
  ok: boolean;
  snapshot: string | null;
  bytesAdded: number | null;
  durationMs: number;
  error: string | null;
}
export interface VerifyOutcomeView {
  at: string;
  ok: boolean;
  snapshot: string | null;
  files: number;
  bytes: number;
  durationMs: number;
  detail: string;
}

/** `GET …/backup-status` */
export interface BackupStatus {
  node: string;
  volume: string;
  policy: VolumeBackupPolicy | null;
  lastBackup: BackupOutcomeView | null;
  lastVerified: VerifyOutcomeView | null;
  lastVerifiedOkAt: string | null;
}

/** `POST …/snapshots` */
export interface SnapshotList {
  repository: string | null;
  snapshots: SnapshotSummary[];
}

/** The hub's alert limit: a policy's last good verification may be this old (hub/alerts/sources/backup-verify-source.ts). */
export const VERIFY_MAX_AGE_MS = 86_400_000;

export function volumePath(node: string, volume: string, rest: 'backups' | 'restores' | 'snapshots' | 'backup-policy' | 'backup-status'): string {
  return apiNodePath(node, `/volumes/${encodeURIComponent(volume)}/${rest}`);
}

/** The volume's own backups page. */
export function backupsHref(node: string, volume: string): string {
  return `/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(volume)}/backups`;
}

export const loadStatus = (node: string, volume: string, signal?: AbortSignal): Promise<BackupStatus> => get<BackupStatus>(volumePath(node, volume, 'backup-status'), signal ? { signal } : {});

/** The names of the credentials (`secretEnv`) the hub keeps for the volume's policy; never their values. None without a policy. */
export async function loadPolicySecretNames(node: string, volume: string, signal?: AbortSignal): Promise<string[]> {
  try {
    return (await get<{ secretEnvNames?: string[] }>(volumePath(node, volume, 'backup-policy'), signal ? { signal } : {})).secretEnvNames ?? [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

/** `GET /api/v1/nodes/NAME/backup-status`: every volume's status on the node. */
export interface NodeBackupStatus {
  node: string;
  volumes: BackupStatus[];
}

/** Rows rendered together share one read of their node's statuses (this long). */
const NODE_READ_SHARED_MS = 1_000;
const nodeReads = new Map<string, { at: number; read: Promise<NodeBackupStatus> }>();

function readNodeStatus(node: string): Promise<NodeBackupStatus> {
  const held = nodeReads.get(node);
  if (held && Date.now() - held.at < NODE_READ_SHARED_MS) return held.read;
  const read = get<NodeBackupStatus>(apiNodePath(node, '/backup-status'));
  const entry = { at: Date.now(), read };
  nodeReads.set(node, entry);
  read.catch(() => {
    if (nodeReads.get(node) === entry) nodeReads.delete(node);
  });
  return read;
}

/**
 * One Volumes row's status, from one call per node that all the node's rows share (a volume the
 * hub has nothing on reads as no policy, no backup). The row's own signal stops only its wait.
 */
export async function loadRowStatus(node: string, volume: string, signal?: AbortSignal): Promise<BackupStatus> {
  const read = readNodeStatus(node);
  const all = signal
    ? await Promise.race([
        read,
        new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      ])
    : await read;
  return all.volumes.find((v) => v.volume === volume) ?? { node, volume, policy: null, lastBackup: null, lastVerified: null, lastVerifiedOkAt: null };
}

/**
 * Why the volume's backups are not proven, in words; null when they are (or when there is no
 * policy, which the alert does not judge either). The rule is the alert's: the last successful
 * verification, or the policy's setting when none ever succeeded, is older than a day.
 */
export function unverifiedReason(status: BackupStatus, now = Date.now()): string | null {
  if (!status.policy) return null;
  const okAt = status.lastVerifiedOkAt ? Date.parse(status.lastVerifiedOkAt) : null;
  if (now - (okAt ?? status.policy.setAt) <= VERIFY_MAX_AGE_MS) return null;
  const failed = status.lastVerified && !status.lastVerified.ok ? ` The last verification failed: ${status.lastVerified.detail}` : '';
  return okAt === null ? `No verification has succeeded since the policy was set, over a day ago.${failed}` : `The last successful verification is over a day old.${failed}`;
}

/** A repository typed as text: blank is the host's default, `hub` the hub, `/…` a host path, else a restic URL. */
export function parseRepository(text: string): BackupRepository | null {
  const t = text.trim();
  if (t === '') return null;
  if (t === 'hub') return { kind: 'hub' };
  if (t.startsWith('/')) return { kind: 'path', path: t };
  return { kind: 'url', url: t };
}

export function repositoryText(repo: BackupRepository | null): string {
  if (!repo) return '';
  return repo.kind === 'hub' ? 'hub' : repo.kind === 'path' ? repo.path : repo.url;
}

export function retentionText(r: BackupRetention): string {
  const parts = [r.keepLast && `last ${r.keepLast}`, r.keepDaily && `${r.keepDaily} daily`, r.keepWeekly && `${r.keepWeekly} weekly`, r.keepMonthly && `${r.keepMonthly} monthly`].filter(Boolean);
  return parts.length ? `keep ${parts.join(', ')}` : 'keep every snapshot';
}

/**
 * Why this browser cannot file volume jobs on the node; null when it can. Every volume job
 * (backup, restore, snapshot list, policy set) is a job the host checks like a deploy: on a
 * signed host this browser signs it, so only a missing or unlisted key blocks (signing.ts).
 */
export function useVolumeJobBlock(node: string): string | null {
  return useSigningBlock(node);
}

type Proposal = { jobs: Array<{ id: string; node: string; signedBody: string }> };

/** This browser's key when the node requires signed intent; null when it need not sign. */
async function volumeSigner(node: string): Promise<BrowserKey | null> {
  const view = fleet.get().nodes?.find((n) => n.name === node);
  if (!signedIntentOf(view)) return null;
  const s = session.get();
  const key = s.status === 'signedIn' ? await loadBrowserKey(s.me.name) : null;
  const block = signingBlock(view, key);
  if (block) throw new ApiError(403, 'signed_intent_required', block);
  return key;
}

/**
 * Signs the one job the hub filed for this browser: it must be of the kind asked, for this node
 * and volume (a policy set: holding the volume's policy, or not after a removal). The page's code
 * comes from the hub, so this guards against mistakes, not a hub that lies (the CLI's is the strong check).
 */
async function signVolumeJob(key: BrowserKey, node: string, volume: string, kind: string, proposal: Proposal | undefined, keeps = true): Promise<void> {
  if (proposal?.jobs.length !== 1) throw new ApiError(502, 'signing_failed', 'The hub did not file the job for this browser to sign.');
  const job = proposal.jobs[0]!;
  const body = JSON.parse(job.signedBody) as { volume?: { volume?: unknown }; policies?: { policies?: Array<{ volume?: unknown }> } };
  const names = kind === 'volume-policies' ? body.policies?.policies?.some((p) => p.volume === volume) === keeps : body.volume?.volume === volume;
  try {
    if (!names) throw new Error(`the hub proposed a ${kind} job that is not for ${volume}`);
    const { signRollout } = await import('./intent.ts');
    await signRollout(key, '', { kind, nodes: [node], jobs: proposal.jobs }, async (id, intent) => void (await post(`/api/v1/jobs/${encodeURIComponent(id)}/intent`, { intent })));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await post(`/api/v1/jobs/${encodeURIComponent(job.id)}/decline`, { reason: reason.slice(0, 1_000) }).catch(() => undefined);
    throw new ApiError(err instanceof ApiError ? err.status : 400, 'signing_failed', `The ${kind} job was filed but not signed (${reason}), so the host will not run it.`);
  }
}

/** Files a backup or restore (POST), signed by this browser on a host that requires it. */
export async function fileVolumeJob(node: string, volume: string, rest: 'backups' | 'restores', body: Record<string, unknown>): Promise<JobView> {
  const key = await volumeSigner(node);
  const filed = await post<JobView & { signing?: Proposal }>(volumePath(node, volume, rest), key ? { ...body, sign: true } : body);
  if (key) await signVolumeJob(key, node, volume, rest === 'backups' ? 'volume-backup' : 'volume-restore', filed.signing);
  return filed;
}

/** Sets (body) or removes (null) the volume's policy; its volume-policies job signed where the host requires it. */
export async function saveVolumePolicy(node: string, volume: string, body: Record<string, unknown> | null): Promise<void> {
  const key = await volumeSigner(node);
  const path = volumePath(node, volume, 'backup-policy');
  const answer =
    body === null
      ? await del<{ job: { signing?: Proposal } }>(key ? `${path}?sign=true` : path)
      : await json<{ job: { signing?: Proposal } }>('PUT', path, { body: key ? { ...body, sign: true } : body });
  if (key) await signVolumeJob(key, node, volume, 'volume-policies', answer.job.signing, body !== null);
}

const FOLLOW_MS = 500;

/** The snapshot list. On a signed host the listing job is signed here, then followed to its result. */
export async function listSnapshots(node: string, volume: string, repository: BackupRepository | null, signal?: AbortSignal): Promise<SnapshotList> {
  const key = await volumeSigner(node);
  const opts = signal ? { signal } : {};
  if (!key) return post<SnapshotList>(volumePath(node, volume, 'snapshots'), { repository }, opts);
  const filed = await post<{ job: JobView; signing?: Proposal }>(volumePath(node, volume, 'snapshots'), { repository, sign: true }, opts);
  await signVolumeJob(key, node, volume, 'volume-snapshots', filed.signing);
  for (;;) {
    const job = await get<JobDetail>(`/api/v1/jobs/${encodeURIComponent(filed.job.id)}`, opts);
    if (job.state === 'failed') throw new ApiError(409, 'invalid_state', `listing the snapshots failed: ${job.error ?? 'no reason given'} (job ${job.id})`);
    if (job.state === 'succeeded') return { repository: job.result?.volume?.repository ?? null, snapshots: (job.result?.volume?.snapshots ?? []) as SnapshotSummary[] };
    await new Promise((r) => setTimeout(r, FOLLOW_MS));
    signal?.throwIfAborted();
  }
}
