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
  z.strictObject({
    kind: z.literal('path'),
    path: z
      .string()
      .min(2)
      .max(4_096)
      .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute host path'),
  }),
  z.strictObject({
    kind: z.literal('url'),
    url: z
      .string()
      .min(3)
      .max(4_096)
      .regex(/^[a-z0-9]+:/, 'must be a restic repository URL such as sftp:… s3:… rest:…'),
  }),
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

/**
 * Per-volume backup policies (issue 14, items 4–5), carried out by the agent on its own clock.
 * `every`: an interval (`30m`, `6h`, `24h`, `7d`; at least 1 minute) or a daily time in UTC
 * (`03:30`). `verifyEvery`: an interval (default `24h`). Intervals under a minute (`10s`) are
 * taken only where DOCKFLEET_TEST_BACKUP_INTERVALS=1 is set (tests), at the hub and the agent.
 */
export const INTERVAL = /^([1-9][0-9]{0,5})(s|m|h|d)$/;
export const DAILY_TIME = /^([01][0-9]|2[0-3]):([0-5][0-9])$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
export const MIN_INTERVAL_MS = 60_000;

/** An interval in ms, or null when it is not one (or shorter than allowed). */
export function intervalMs(text: string, allowShort = process.env.DOCKFLEET_TEST_BACKUP_INTERVALS === '1'): number | null {
  const m = INTERVAL.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > 366 * UNIT_MS.d) return null;
  return ms >= MIN_INTERVAL_MS || allowShort ? ms : null;
}

const scheduleText = z
  .string()
  .max(16)
  .refine((s) => DAILY_TIME.test(s) || intervalMs(s) !== null, 'an interval of at least 1m such as 6h or 24h, or a daily UTC time such as 03:30');
const intervalText = z
  .string()
  .max(16)
  .refine((s) => intervalMs(s) !== null, 'an interval of at least 1m such as 24h');

export const volumeBackupPolicy = z.strictObject({
  volume: z.string().regex(VOLUME_NAME),
  every: scheduleText,
  retention: backupRetention,
  repository: backupRepository.nullable(),
  verifyEvery: intervalText,
  /** When the hub stored this policy (ms): the verification alert counts from here until a first success. */
  setAt: z.number().int().nonnegative(),
});
export type VolumeBackupPolicy = z.infer<typeof volumeBackupPolicy>;

/** A `volume-policies` job: the node's whole set (idempotent); an agent keeps the highest revision it was given. */
export const volumePoliciesSpec = z.strictObject({
  revision: z.number().int().nonnegative(),
  policies: z.array(volumeBackupPolicy).max(1_000),
});
export type VolumePoliciesSpec = z.infer<typeof volumePoliciesSpec>;

/** `PUT /api/v1/nodes/NAME/volumes/VOLUME/backup-policy` */
export const putPolicyBody = z.strictObject({
  every: scheduleText,
  retention: backupRetention.default({}),
  repository: backupRepository.nullable().default(null),
  verifyEvery: intervalText.default('24h'),
});

/** What the agent reports of the runs the hub did not file: the latest backup and verification per volume. */
export const backupOutcome = z.strictObject({
  at: z.number(),
  ok: z.boolean(),
  snapshot: z.string().max(64).nullable(),
  bytesAdded: z.number().int().nonnegative().nullable(),
  durationMs: z.number().int().nonnegative(),
  error: z.string().max(2_000).nullable(),
});
export type BackupOutcome = z.infer<typeof backupOutcome>;

export const verifyOutcome = z.strictObject({
  at: z.number(),
  ok: z.boolean(),
  snapshot: z.string().max(64).nullable(),
  files: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  /** "verified", or what differed / why it could not be checked. */
  detail: z.string().max(2_000),
});
export type VerifyOutcome = z.infer<typeof verifyOutcome>;

export const volumeBackupReport = z.strictObject({
  volume: z.string().regex(VOLUME_NAME),
  backup: backupOutcome.nullable(),
  verify: verifyOutcome.nullable(),
});
export type VolumeBackupReport = z.infer<typeof volumeBackupReport>;

/** The agent's answer on BACKUP_REPORTS_PATH: every volume's latest, now and on each change (NDJSON). */
export const BACKUP_REPORTS_PATH = '/_dockfleet/v1/volume-backups/reports';
/** A key a scheduled backup made under escrow custody: wrapped under the recovery code, which stays on the host. */
export const escrowReport = z.strictObject({ repository: z.string().max(4_096), escrowedKey: z.string().max(8_000), createdAt: z.number() });
export type EscrowReport = z.infer<typeof escrowReport>;
export const backupReportsMessage = z.strictObject({ reports: z.array(volumeBackupReport).max(10_000), escrows: z.array(escrowReport).max(1_000).optional() });
export type BackupReportsMessage = z.infer<typeof backupReportsMessage>;

// Answers of the volume backup routes, as the OpenAPI document shows them (times as ISO strings).
const atIso = z.string();
export const volumeBackupStatusView = z.object({
  node: z.string(),
  volume: z.string(),
  policy: volumeBackupPolicy.nullable(),
  lastBackup: backupOutcome.extend({ at: atIso }).nullable(),
  lastVerified: verifyOutcome.extend({ at: atIso }).nullable(),
  lastVerifiedOkAt: atIso.nullable(),
});
