/**
 * What a hub backup archive holds, and the checks its names and manifest must pass.
 * Inside the age encryption is one tar stream, compressed with brotli from format 2 on (format 1:
 * the tar as it is; backup-compression.ts):
 *   manifest.json          first: format, versions, the hub it came from, and every member's size and SHA-256
 *   data/<path>            the hub's data directory (the database as an online-backup copy, pki/, admin.token, acme/ …)
 *   master.key             the hub's master key (32 bytes), unless the backup was made with --no-master-key
 * Nothing else may appear; a name outside this layout, or one the manifest does not list, is refused.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const BACKUP_FORMAT = 'dockfleet-hub-backup';
/** Raised when the layout or manifest changes so that an older dockfleet could not restore it. */
export const BACKUP_FORMAT_VERSION = 2;
/** The formats this dockfleet restores: 1 (uncompressed tar) and 2 (brotli-compressed tar). */
export const READABLE_FORMAT_VERSIONS: readonly number[] = [1, 2];
export const MANIFEST_MEMBER = 'manifest.json';
export const MASTER_KEY_MEMBER = 'master.key';
export const DATA_PREFIX = 'data/';
/** The manifest is small; a bigger first member is not one of ours. */
export const MANIFEST_MAX_BYTES = 1024 * 1024;

/** In DIR but never in the archive: the live database files (the copy goes in instead) and volume-backup ciphertext. */
export const EXCLUDED_FROM_DATA = ['dockfleet.db-wal', 'dockfleet.db-shm', 'dockfleet.db-journal', 'restic', 'secrets.key'] as const;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const manifestSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  formatVersion: z.number().int().positive(),
  dockfleetVersion: z.string(),
  /** The newest database migration applied (its file name): the schema version. */
  schemaVersion: z.string(),
  createdAt: z.string(),
  hub: z.object({ url: z.string().nullable(), caDigest: z.string().nullable() }),
  masterKeyIncluded: z.boolean(),
  /** How the tar is compressed inside the encryption (format 2 on; a format-1 manifest has no such field). */
  compression: z.enum(['none', 'brotli']).optional(),
  members: z.array(z.object({ path: z.string(), size: z.number().int().nonnegative(), sha256: sha256Hex })),
});

export type BackupManifest = z.infer<typeof manifestSchema>;
export type ManifestMember = BackupManifest['members'][number];

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/**
 * Whether NAME may be a member: `master.key`, or `data/` + relative segments of plain characters
 * (no `..`, no leading dot or slash, no backslash, no empty segment). Used on both sides.
 */
export function isSafeMemberName(name: string): boolean {
  if (name === MASTER_KEY_MEMBER) return true;
  if (!name.startsWith(DATA_PREFIX) || name.length > 512) return false;
  const segments = name.slice(DATA_PREFIX.length).split('/');
  return segments.length <= 8 && segments.every((s) => SEGMENT.test(s) && s !== '..');
}

let version: string | null = null;
/** This dockfleet's version, from package.json. */
export function dockfleetVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
