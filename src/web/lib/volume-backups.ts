/**
 * Volume backups as the UI reads and files them (issue 14): the hub's per-volume routes, the
 * shapes they answer with, the "not verified for a day" rule (the same one as the hub's
 * `backup-unverified` alert), and repositories typed as text ("/srv/backups", "hub", a restic URL).
 */
import { apiNodePath, get } from './api.ts';
import { signedIntentOf } from './signing.ts';
import type { NodeView } from './types.ts';
import type { BackupRepository, BackupRetention, SnapshotSummary, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';

export type { BackupRepository, BackupRetention, SnapshotSummary, VolumeBackupPolicy };

/** One outcome as the hub answers it (times as ISO strings). */
export interface BackupOutcomeView { at: string; ok: boolean; snapshot: string | null; bytesAdded: number | null; durationMs: number; error: string | null }
export interface VerifyOutcomeView { at: string; ok: boolean; snapshot: string | null; files: number; bytes: number; durationMs: number; detail: string }

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
export interface SnapshotList { repository: string | null; snapshots: SnapshotSummary[] }

/** The hub's alert limit: a policy's last good verification may be this old (hub/alerts/sources/backup-verify-source.ts). */
export const VERIFY_MAX_AGE_MS = 86_400_000;

export function volumePath(node: string, volume: string, rest: 'backups' | 'restores' | 'snapshots' | 'backup-policy' | 'backup-status'): string {
  return apiNodePath(node, `/volumes/${encodeURIComponent(volume)}/${rest}`);
}

/** The volume's own backups page. */
export function backupsHref(node: string, volume: string): string {
  return `/nodes/${encodeURIComponent(node)}/volumes/${encodeURIComponent(volume)}/backups`;
}

export const loadStatus = (node: string, volume: string, signal?: AbortSignal): Promise<BackupStatus> =>
  get<BackupStatus>(volumePath(node, volume, 'backup-status'), signal ? { signal } : {});

/** `GET /api/v1/nodes/NAME/backup-status`: every volume's status on the node. */
export interface NodeBackupStatus { node: string; volumes: BackupStatus[] }

/** Rows rendered together share one read of their node's statuses (this long). */
const NODE_READ_SHARED_MS = 1_000;
const nodeReads = new Map<string, { at: number; read: Promise<NodeBackupStatus> }>();

function readNodeStatus(node: string): Promise<NodeBackupStatus> {
  const held = nodeReads.get(node);
  if (held && Date.now() - held.at < NODE_READ_SHARED_MS) return held.read;
  const read = get<NodeBackupStatus>(apiNodePath(node, '/backup-status'));
  const entry = { at: Date.now(), read };
  nodeReads.set(node, entry);
  read.catch(() => { if (nodeReads.get(node) === entry) nodeReads.delete(node); });
  return read;
}

/**
 * One Volumes row's status, from one call per node that all the node's rows share (a volume the
 * hub has nothing on reads as no policy, no backup). The row's own signal stops only its wait.
 */
export async function loadRowStatus(node: string, volume: string, signal?: AbortSignal): Promise<BackupStatus> {
  const read = readNodeStatus(node);
  const all = signal
    ? await Promise.race([read, new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    })])
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
  return okAt === null
    ? `No verification has succeeded since the policy was set, over a day ago.${failed}`
    : `The last successful verification is over a day old.${failed}`;
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
 * Why this UI cannot file volume jobs on the node; null when it can. Every volume job (backup,
 * restore, snapshot list, policy set) is a job the host checks like a deploy, and the hub does
 * not yet hold volume jobs for a browser's signature.
 */
export function volumeJobBlock(node: Pick<NodeView, 'name' | 'policy'> | null | undefined): string | null {
  if (!node || !signedIntentOf(node)) return null;
  return `${node.name} requires signed intent, and volume backup jobs cannot be signed from the web UI yet: the host would refuse them.`;
}
