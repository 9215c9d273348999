/**
 * The volume backup tables' rows (policies and per-volume status) as both engines return them
 * (SQLite's INTEGER and PostgreSQL's BIGINT both arrive as numbers), the records they map to,
 * and a policy's column values in the order the stores' upsert lists them.
 */
import type { BackupOutcome, VerifyOutcome, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';
import type { PolicyRecord, StatusRecord } from './volume-backup-store.ts';

export interface PolicyRow {
  node: string;
  volume: string;
  policy: string;
  set_by: string;
}

export const policyFrom = (r: PolicyRow): PolicyRecord => ({ node: r.node, volume: r.volume, policy: JSON.parse(r.policy) as VolumeBackupPolicy, setBy: r.set_by });

/** volume_backup_policies' columns, in the upsert's order: node, volume, policy, set_at, set_by. */
export const policyValues = (r: PolicyRecord): unknown[] => [r.node, r.volume, JSON.stringify(r.policy), r.policy.setAt, r.setBy];

export interface StatusRow {
  node: string;
  volume: string;
  last_backup: string | null;
  last_verify: string | null;
  last_verified_ok_at: number | null;
  updated_at: number;
}

export const statusFrom = (r: StatusRow): StatusRecord => ({
  node: r.node,
  volume: r.volume,
  updatedAt: r.updated_at,
  lastVerifiedOkAt: r.last_verified_ok_at,
  lastBackup: r.last_backup === null ? null : (JSON.parse(r.last_backup) as BackupOutcome),
  lastVerify: r.last_verify === null ? null : (JSON.parse(r.last_verify) as VerifyOutcome),
});
