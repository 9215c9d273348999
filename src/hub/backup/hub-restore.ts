/**
 * `dockfleet restore FILE --data NEWDIR`: everything is checked before anything is in place.
 * The archive is decrypted (and, format 2, decompressed) as a stream into a private folder BESIDE
 * NEWDIR (same filesystem); the manifest comes first and must be a known format and schema; every member must be listed,
 * safely named, of its listed size and SHA-256, and every listed member present. The database
 * copy must pass SQLite's integrity check, is migrated when older (the store's own migrations),
 * and its audit chain must hold. The master key, when carried, must open the restored CA key.
 * Only then is the key written beside NEWDIR (0600, never over a different key) and the folder
 * renamed to NEWDIR in one step. Any failure removes the folder: NEWDIR is not created.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { link, lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { extract as tarExtract, type Header } from 'tar-stream';
import { DockfleetError } from '../../protocol/errors.ts';
import { SqliteStore } from '../../store/sqlite/sqlite-store.ts';
import { verifyHubAudit } from '../audit-chain/verify-hub-audit.ts';
import { CA_KEY_CONTEXT, CA_KEY_FILE } from '../pki.ts';
import { SecretBox } from '../secret-box.ts';
import { bodyError, openEncrypted, syncDir, type OpenWith } from './backup-archive.ts';
import { decompressed, type Compression } from './backup-compression.ts';
import {
  BACKUP_FORMAT,
  DATA_PREFIX,
  MANIFEST_MAX_BYTES,
  MANIFEST_MEMBER,
  MASTER_KEY_MEMBER,
  READABLE_FORMAT_VERSIONS,
  isSafeMemberName,
  manifestSchema,
  type BackupManifest,
  type ManifestMember,
} from './backup-format.ts';
import { defaultMasterKeyFile, MASTER_KEY_BYTES } from './master-key.ts';
import { appliedMigrations } from './sqlite-snapshot.ts';

const DATABASE_FILE = 'dockfleet.db';
const MIGRATIONS_DIR = fileURLToPath(new URL('../../store/sqlite/migrations/', import.meta.url));

export interface HubRestoreOptions {
  file: string;
  dataDir: string;
  openWith: OpenWith;
  /** Where the carried master key goes; default: beside NEWDIR, as the hub looks for it. */
  masterKeyFile?: string | null;
}

export interface HubRestoreResult {
  dataDir: string;
  manifest: BackupManifest;
  /** Migrations applied to an older database copy. */
  migrated: string[];
  audit: { rows: number; entries: number };
  /** The key file written (or found holding the same key); null when the archive carried none. */
  masterKeyFile: string | null;
  /** The archive carried no key and none was found where the hub would look. */
  masterKeyMissing: boolean;
}

export async function restoreHubBackup(opts: HubRestoreOptions): Promise<HubRestoreResult> {
  const file = resolve(opts.file);
  const target = resolve(opts.dataDir);
  const parent = dirname(target);
  const keyPath = resolve(opts.masterKeyFile ?? defaultMasterKeyFile(target));
  if (!existsSync(parent)) throw new DockfleetError('bad_request', `cannot restore into ${target}: its parent ${parent} does not exist`);
  await mustBeEmptyOrAbsent(target);
  if (keyPath === target || keyPath.startsWith(`${target}/`)) throw new DockfleetError('master_key_unsafe', `the master key file ${keyPath} would be inside ${target}: keep it outside`);

  const plain = await openEncrypted(file, opts.openWith);
  let staging: string;
  try {
    staging = await mkdtemp(join(parent, `.${basename(target)}.restore-`));
  } catch (err) {
    plain.destroy();
    throw diskError(err, target);
  }
  try {
    const { manifest, masterKey } = await unpack(plain, file, staging, target);
    const migrated = checkAndMigrate(join(staging, DATABASE_FILE), manifest, file);
    const audit = await auditHolds(join(staging, DATABASE_FILE), file);
    let keyFile: string | null = null;
    let keyMissing = false;
    const existingKey = await readExistingKey(keyPath);
    if (masterKey !== null) {
      await keyOpensCa(staging, masterKey, `the master key inside ${file}`);
      if (existingKey !== null && !sameKey(existingKey, masterKey)) {
        throw new DockfleetError('master_key_mismatch', `${keyPath} already holds a different master key: move it away (or restore with --master-key FILE elsewhere); nothing was written`);
      }
      keyFile = keyPath;
    } else if (existingKey !== null) {
      await keyOpensCa(staging, existingKey, `the master key at ${keyPath}`);
      keyFile = keyPath;
    } else {
      keyMissing = true;
    }
    await syncTree(staging);
    // Everything holds: the key first (never over another), then the folder in one rename.
    const wroteKey = masterKey !== null && existingKey === null ? await installKey(keyPath, masterKey) : false;
    try {
      await rename(staging, target);
      await syncDir(parent);
    } catch (err) {
      if (wroteKey) await unlink(keyPath).catch(() => {});
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new DockfleetError('conflict', `${target} was filled by someone else while the archive was checked; nothing was written`);
      }
      throw diskError(err, target);
    }
    return { dataDir: target, manifest, migrated, audit, masterKeyFile: keyFile, masterKeyMissing: keyMissing };
  } finally {
    plain.destroy();
    await rm(staging, { recursive: true, force: true });
  }
}

/** Reads the tar: the manifest first, then each member checked against it while it is written. */
async function unpack(plain: Readable, file: string, staging: string, target: string): Promise<{ manifest: BackupManifest; masterKey: Buffer | null }> {
  let source: Readable;
  let compression: Compression;
  try {
    ({ stream: source, compression } = await decompressed(plain));
  } catch (err) {
    throw unpackError(err, file, target);
  }
  const extract = tarExtract();
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);
  let manifest: BackupManifest | null = null;
  const listed = new Map<string, ManifestMember>();
  const seen = new Set<string>();
  let masterKey: Buffer | null = null;
  try {
    for await (const entry of extract) {
      const header = entry.header as Header;
      if (manifest === null) {
        if (header.name !== MANIFEST_MEMBER || header.type !== 'file' || (header.size ?? 0) > MANIFEST_MAX_BYTES) {
          throw new DockfleetError('backup_damaged', `${file} is not a dockfleet backup: its first member is not ${MANIFEST_MEMBER}`);
        }
        manifest = parseManifest(await collect(entry, MANIFEST_MAX_BYTES), file);
        compressionAgrees(manifest, compression, file);
        for (const m of manifest.members) listed.set(m.path, m);
        continue;
      }
      const name = header.name;
      if (header.type !== 'file' || !isSafeMemberName(name))
        throw new DockfleetError('backup_damaged', `${file} holds a member that may not be restored: ${JSON.stringify(name)} (${header.type ?? 'unknown type'})`);
      const want = listed.get(name);
      if (!want) throw new DockfleetError('backup_damaged', `${file} holds ${name}, which its manifest does not list`);
      if (seen.has(name)) throw new DockfleetError('backup_damaged', `${file} holds ${name} twice`);
      if (header.size !== want.size) throw new DockfleetError('backup_damaged', `${file}: ${name} is ${header.size} bytes, the manifest says ${want.size}`);
      seen.add(name);
      if (name === MASTER_KEY_MEMBER) {
        masterKey = await collect(entry, MASTER_KEY_BYTES);
        if (masterKey.length !== MASTER_KEY_BYTES || sha256(masterKey) !== want.sha256) throw new DockfleetError('backup_damaged', `${file}: the master key does not match its checksum`);
        continue;
      }
      const sha = await writeMember(entry, join(staging, name.slice(DATA_PREFIX.length)), target);
      if (sha !== want.sha256) throw new DockfleetError('backup_damaged', `${file}: ${name} does not match its SHA-256 in the manifest`);
    }
  } catch (err) {
    extract.destroy();
    throw unpackError(err, file, target);
  }
  if (manifest === null) throw new DockfleetError('backup_damaged', `${file} is empty inside: no manifest`);
  const missing = manifest.members.filter((m) => !seen.has(m.path)).map((m) => m.path);
  if (missing.length > 0) throw new DockfleetError('backup_damaged', `${file} lacks ${missing.join(', ')}, which its manifest lists`);
  if (!seen.has(`${DATA_PREFIX}${DATABASE_FILE}`)) throw new DockfleetError('backup_damaged', `${file} holds no database`);
  if (manifest.masterKeyIncluded !== (masterKey !== null)) throw new DockfleetError('backup_damaged', `${file}: the manifest and the members disagree about the master key`);
  return { manifest, masterKey };
}

function parseManifest(bytes: Buffer, file: string): BackupManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new DockfleetError('backup_damaged', `${file} is not a dockfleet backup: its manifest is not JSON`);
  }
  const head = raw as { format?: unknown; formatVersion?: unknown };
  if (head?.format !== BACKUP_FORMAT) throw new DockfleetError('backup_damaged', `${file} is not a dockfleet backup (its manifest names no ${BACKUP_FORMAT} format)`);
  if (typeof head.formatVersion === 'number' && head.formatVersion > Math.max(...READABLE_FORMAT_VERSIONS)) {
    throw new DockfleetError(
      'backup_too_new',
      `${file} was made by a newer dockfleet: archive format ${head.formatVersion}, this dockfleet reads up to ${Math.max(...READABLE_FORMAT_VERSIONS)}; restore with that version or newer`,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new DockfleetError('backup_damaged', `${file}: its manifest does not have the expected fields (${parsed.error.issues[0]?.path.join('.') ?? '?'})`);
  const manifest = parsed.data;
  if (!READABLE_FORMAT_VERSIONS.includes(manifest.formatVersion)) throw new DockfleetError('backup_damaged', `${file}: unknown archive format ${manifest.formatVersion}`);
  const known = knownMigrations();
  if (!known.includes(manifest.schemaVersion) && manifest.schemaVersion > known.at(-1)!) {
    throw new DockfleetError(
      'backup_too_new',
      `${file} was made by a newer dockfleet (${manifest.dockfleetVersion}): its database schema ${manifest.schemaVersion} is newer than this dockfleet's ${known.at(-1)}; restore with that version or newer`,
    );
  }
  const paths = new Set<string>();
  for (const m of manifest.members) {
    if (!isSafeMemberName(m.path) || paths.has(m.path)) throw new DockfleetError('backup_damaged', `${file}: its manifest lists a member that may not be restored: ${JSON.stringify(m.path)}`);
    paths.add(m.path);
  }
  return manifest;
}

/** Format 1 is an uncompressed tar with no word on it; from format 2 the manifest names what the stream is. */
function compressionAgrees(manifest: BackupManifest, found: Compression, file: string): void {
  const declared = manifest.compression ?? 'none';
  if (manifest.formatVersion === 1 && manifest.compression !== undefined) throw new DockfleetError('backup_damaged', `${file}: a format-1 manifest names a compression`);
  if (manifest.formatVersion >= 2 && manifest.compression === undefined) throw new DockfleetError('backup_damaged', `${file}: its format-${manifest.formatVersion} manifest names no compression`);
  if (declared !== found)
    throw new DockfleetError('backup_damaged', `${file}: its manifest says the archive is compressed with ${declared}, but it is ${found === 'none' ? 'not compressed' : `compressed with ${found}`}`);
}

/** Integrity, schema (newer refused, older migrated with the store's migrations), in that order. */
function checkAndMigrate(dbFile: string, manifest: BackupManifest, file: string): string[] {
  const known = knownMigrations();
  const db = new Database(dbFile, { fileMustExist: true });
  let applied: string[];
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new DockfleetError('backup_damaged', `${file}: the database copy fails SQLite's integrity check (${String(check)})`);
    applied = appliedMigrations(db);
  } catch (err) {
    if (err instanceof DockfleetError) throw err;
    throw new DockfleetError('backup_damaged', `${file}: the database copy does not open (${(err as Error).message})`);
  } finally {
    db.close();
  }
  const unknown = applied.filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    throw new DockfleetError(
      'backup_too_new',
      `${file} was made by a newer dockfleet (${manifest.dockfleetVersion}): its database has migrations this dockfleet does not know (${unknown.join(', ')})`,
    );
  }
  if (applied.at(-1) !== manifest.schemaVersion)
    throw new DockfleetError('backup_damaged', `${file}: the manifest's schema ${manifest.schemaVersion} is not the database's (${applied.at(-1) ?? 'none'})`);
  return known.filter((name) => !applied.includes(name));
}

async function auditHolds(dbFile: string, file: string): Promise<{ rows: number; entries: number }> {
  const store = new SqliteStore(dbFile);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
  // Read-write, though it only reads: its close checkpoints and removes the -wal and -shm files.
  const db = new Database(dbFile, { fileMustExist: true });
  try {
    const report = verifyHubAudit(db);
    if (report.problem) throw new DockfleetError('state_corrupt', `${file}: the hub's audit chain does not hold in this backup: ${report.problem.message}`);
    return { rows: report.rows, entries: report.entries };
  } finally {
    db.close();
  }
}

let migrationsCache: string[] | null = null;
/** The migrations this dockfleet has, in order (the store applies them in name order). */
function knownMigrations(): string[] {
  migrationsCache ??= readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  return migrationsCache;
}

async function keyOpensCa(staging: string, key: Buffer, what: string): Promise<void> {
  const path = join(staging, 'pki', CA_KEY_FILE);
  if (!existsSync(path)) return;
  const text = (await readFile(path, 'utf8')).trim();
  if (text.includes('PRIVATE KEY-----')) return; // an unsealed key from an older hub: the hub seals it on start
  try {
    new SecretBox(key).open(text, CA_KEY_CONTEXT);
  } catch {
    throw new DockfleetError('master_key_mismatch', `${what} does not open the backed-up CA key: it is not the key this hub was sealed under; nothing was written`);
  }
}

async function readExistingKey(path: string): Promise<Buffer | null> {
  try {
    const info = await lstat(path);
    if (!info.isFile() || info.size !== MASTER_KEY_BYTES)
      throw new DockfleetError('master_key_unsafe', `${path} exists but is not a ${MASTER_KEY_BYTES}-byte key file: move it away; nothing was written`);
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes the key without replacing anything: temp file (0600), fsync, link into place. */
async function installKey(path: string, key: Buffer): Promise<boolean> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(temp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DockfleetError('master_key_mismatch', `${path} appeared while restoring: nothing was written`);
    throw diskError(err, path);
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDir(dirname(path));
  return true;
}

async function writeMember(entry: AsyncIterable<unknown>, path: string, target: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const hash = createHash('sha256');
  const fh = await open(path, 'wx', 0o600);
  try {
    for await (const chunk of entry) {
      hash.update(chunk as Buffer);
      let offset = 0;
      const bytes = chunk as Buffer;
      while (offset < bytes.length) offset += (await fh.write(bytes, offset)).bytesWritten;
    }
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw code === 'ENOSPC' || code === 'EDQUOT' ? diskError(err, target) : err; // anything else: the archive's stream (damage), told by unpackError
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function collect(entry: AsyncIterable<unknown>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += (chunk as Buffer).length;
    if (size > max) throw new DockfleetError('backup_damaged', 'a member is larger than it may be');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function mustBeEmptyOrAbsent(target: string): Promise<void> {
  let info;
  try {
    info = await lstat(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!info.isDirectory() || (await readdir(target)).length > 0) {
    throw new DockfleetError('conflict', `${target} exists and is not an empty directory: restore into a new one (nothing was written)`);
  }
}

async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await syncTree(join(dir, entry.name));
  await syncDir(dir);
}

function unpackError(err: unknown, file: string, target: string): DockfleetError {
  if (err instanceof DockfleetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return diskError(err, target);
  const message = (err as Error).message ?? String(err);
  if (typeof code === 'string' && /^(ERR__ERROR_|Z_)/.test(code)) {
    // zlib's own error (age's are plain errors): the plaintext is neither a tar nor brotli.
    return new DockfleetError('backup_damaged', `${file} is not a dockfleet backup: the decrypted content is not its archive (${message})`);
  }
  if (/tar|header|Unexpected end/i.test(message) && !/chunk|tag|final|ciphertext/i.test(message)) {
    return new DockfleetError('backup_damaged', `${file} is not a dockfleet backup: the decrypted content is not its archive (${message})`);
  }
  return bodyError(err, file);
}

function diskError(err: unknown, target: string): DockfleetError {
  if (err instanceof DockfleetError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new DockfleetError('insufficient_storage', `no space left beside ${target} to restore into: nothing was written`);
  return new DockfleetError('internal', `restoring into ${target} failed: ${(err as Error).message ?? String(err)}`);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
