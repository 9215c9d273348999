/**
 * Volume backups (issue 14): what a `volume-backup`, `volume-restore` or `volume-snapshots` job
 * carries (`JobRequest.volume`), what it reports back (`JobResult.volume`), and the REST bodies
 * that file them. The agent does the work with restic; nothing here is crypto or chunking.
 *
 * Repositories: a path on the host, any URL restic supports (its credentials travel in the
 * job's sealed secrets as restic's own environment variables), or the hub itself (Z3a's
 * transport). `null` means the host's own default (`backups.repository` in its policy file).
 */
import { z } from 'zod';

/** Docker's own rule for volume names. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;
/** restic snapshot ids: 8 to 64 hex characters, or `latest`. */
export const SNAPSHOT_REF = /^(latest|[0-9a-f]{8,64})$/;

export const CUSTODY_MODES = ['host-only', 'escrow', 'hub-managed'] as const;
export type CustodyMode = (typeof CUSTODY_MODES)[number];

export const backupRepository = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('path'), path: z.string().min(2).max(4_096).refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute host path') }),
  z.strictObject({ kind: z.literal('url'), url: z.string().min(3).max(4_096).regex(/^[a-z0-9]+:/, 'must be a restic repository URL such as sftp:… s3:… rest:…') }),
  z.strictObject({ kind: z.literal('hub') }),
]);
export type BackupRepository = z.infer<typeof backupRepository>;

/** restic forget's keep rules; all omitted = keep everything. */
export const backupRetention = z.strictObject({
  keepLast: z.number().int().min(1).max(10_000).optional(),
  keepDaily: z.number().int().min(1).max(10_000).optional(),
  keepWeekly: z.number().int().min(1).max(10_000).optional(),
  keepMonthly: z.number().int().min(1).max(10_000).optional(),
});
export type BackupRetention = z.infer<typeof backupRetention>;

/** An age X25519 recipient (`age1…`): a new escrow recovery code is sealed to it, so only the filer reads it. */
const AGE_RECIPIENT = /^age1[0-9a-z]{50,100}$/;

export const volumeJobSpec = z.strictObject({
  volume: z.string().regex(VOLUME_NAME),
  repository: backupRepository.nullable(),
  /** volume-backup: forget --prune after the backup with these rules. */
  retention: backupRetention.optional(),
  /** volume-restore: the snapshot (default latest). */
  snapshot: z.string().regex(SNAPSHOT_REF).optional(),
  /** volume-restore: the volume to restore into (default the same one); created when missing. */
  to: z.string().regex(VOLUME_NAME).optional(),
  revealTo: z.string().regex(AGE_RECIPIENT).optional(),
});
export type VolumeJobSpec = z.infer<typeof volumeJobSpec>;

export const snapshotSummary = z.strictObject({
  id: z.string().max(64),
  shortId: z.string().max(64),
  time: z.string().max(64),
  hostname: z.string().max(256),
  tags: z.array(z.string().max(300)).max(20),
  paths: z.array(z.string().max(4_096)).max(20),
});
export type SnapshotSummary = z.infer<typeof snapshotSummary>;

export const volumeJobOutput = z.strictObject({
  /** The repository as the host resolved it (a URL without its credentials). */
  repository: z.string().max(4_096),
  /** volume-backup: the new snapshot; volume-restore: the one restored. */
  snapshot: z.string().max(64).nullable(),
  /** volume-restore: the volume written. */
  volume: z.string().max(255).nullable(),
  filesNew: z.number().int().nonnegative().optional(),
  bytesAdded: z.number().int().nonnegative().optional(),
  /** volume-snapshots: newest last, as restic lists them (at most 1,000). */
  snapshots: z.array(snapshotSummary).max(1_000).optional(),
  custody: z.enum(CUSTODY_MODES).optional(),
  /** escrow, when this job made the repository's key: the password wrapped under the recovery code (age, armored). */
  escrowedKey: z.string().max(8_000).optional(),
  /** escrow, when this job made the key: the recovery code sealed to the job's `revealTo` (age, armored). */
  recoveryCodeSealed: z.string().max(8_000).optional(),
});
export type VolumeJobOutput = z.infer<typeof volumeJobOutput>;

/** `POST /api/v1/nodes/NAME/volumes/VOLUME/backups` */
export const fileBackupBody = z.strictObject({
  repository: backupRepository.nullable().default(null),
  retention: backupRetention.optional(),
  revealTo: z.string().regex(AGE_RECIPIENT).optional(),
  /** restic environment for a URL repository (AWS_ACCESS_KEY_ID, …) and, hub-managed, RESTIC_PASSWORD: sealed, never shown. */
  secretEnv: z.record(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), z.string().max(8_192)).default({}),
});
/** `POST /api/v1/nodes/NAME/volumes/VOLUME/restores` */
export const fileRestoreBody = z.strictObject({
  repository: backupRepository.nullable().default(null),
  snapshot: z.string().regex(SNAPSHOT_REF).optional(),
  to: z.string().regex(VOLUME_NAME).optional(),
  secretEnv: z.record(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), z.string().max(8_192)).default({}),
});
/** `POST /api/v1/nodes/NAME/volumes/VOLUME/snapshots` */
export const listSnapshotsBody = z.strictObject({
  repository: backupRepository.nullable().default(null),
  secretEnv: z.record(z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), z.string().max(8_192)).default({}),
});
