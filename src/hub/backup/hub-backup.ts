/**
 * `dockfleet backup`: one encrypted archive of a hub's data directory, taken while the hub runs.
 * The database is copied with SQLite's online backup into a private staging folder beside the
 * output (never inside DIR: the hub's files are only read), the other files of DIR are read once
 * each, every member is hashed, and the tar (manifest first) streams through age into FILE.
 * The master key goes inside the encryption unless left out (`--no-master-key`): the archive is
 * encrypted to a passphrase or recipient that is never in it, so archive + passphrase restore a
 * hub on new hardware with nothing else.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import { DockfleetError } from '../../protocol/errors.ts';
import { CA_KEY_CONTEXT, CA_KEY_FILE, hubKeysSealed } from '../pki.ts';
import { SecretBox } from '../secret-box.ts';
import { writeEncrypted, type SealTo } from './backup-archive.ts';
import { ARCHIVE_COMPRESSION, compressor } from './backup-compression.ts';
import {
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  DATA_PREFIX,
  EXCLUDED_FROM_DATA,
  MANIFEST_MEMBER,
  MASTER_KEY_MEMBER,
  dockfleetVersion,
  isSafeMemberName,
  type BackupManifest,
  type ManifestMember,
} from './backup-format.ts';
import { snapshotDatabase } from './sqlite-snapshot.ts';

const DATABASE_FILE = 'dockfleet.db';
const HUB_INFO_FILE = 'hub.json';
/** Files of DIR other than the database are small (certificates, tokens); a big one is not ours to carry. */
const MAX_SMALL_FILE = 64 * 1024 * 1024;

export interface HubBackupOptions {
  dataDir: string;
  out: string;
  sealTo: SealTo;
  /** The master key to carry inside the archive, or null to leave it out. */
  masterKey: Buffer | null;
}

export interface HubBackupResult {
  file: string;
  size: number;
  manifest: BackupManifest;
  /** Entries of DIR that were not regular files and were left out (symlinks, sockets). */
  skipped: string[];
}

interface SmallMember {
  path: string;
  bytes: Buffer;
}

export async function createHubBackup(opts: HubBackupOptions): Promise<HubBackupResult> {
  const dataDir = resolve(opts.dataDir);
  const out = resolve(opts.out);
  const dbFile = join(dataDir, DATABASE_FILE);
  if (!existsSync(dbFile)) throw new DockfleetError('not_found', `no hub database at ${dbFile}: --data names the hub's data directory`);
  if (existsSync(join(dataDir, 'secrets.key'))) {
    throw new DockfleetError('invalid_state', `${dataDir} still holds the master key inside it (secrets.key): start the hub once with this dockfleet, which moves it out, then back up`);
  }
  if (opts.masterKey !== null) await checkMasterKeyOpensCa(dataDir, opts.masterKey);
  if (!existsSync(dirname(out))) throw new DockfleetError('bad_request', `cannot write ${out}: the folder ${dirname(out)} does not exist`);
  if (isInside(dataDir, out)) throw new DockfleetError('bad_request', `--out ${out} is inside the data directory: keep backups elsewhere`);

  let staging: string;
  try {
    staging = await mkdtemp(join(dirname(out), `.${basename(out)}.staging-`));
  } catch (err) {
    throw stagingError(err, out);
  }
  try {
    const dbCopy = join(staging, DATABASE_FILE);
    let schemaVersion: string | null;
    try {
      ({ schemaVersion } = await snapshotDatabase(dbFile, dbCopy));
    } catch (err) {
      // SQLite may tell a full disk only as "disk I/O error": ask the filesystem whether the copy had room.
      const free = await statfs(staging).then(
        (f) => f.bavail * f.bsize,
        () => Infinity,
      );
      const needed = await stat(dbFile).then(
        (i) => i.size,
        () => 0,
      );
      throw free < needed ? stagingError(Object.assign(new Error('no space'), { code: 'ENOSPC' }), out) : stagingError(err, out);
    }
    if (schemaVersion === null) throw new DockfleetError('invalid_state', `${dbFile} has no schema yet: start the hub on ${dataDir} once`);
    const skipped: string[] = [];
    const small = await readDataFiles(dataDir, skipped);
    const members: ManifestMember[] = [{ path: `${DATA_PREFIX}${DATABASE_FILE}`, ...(await hashFile(dbCopy)) }, ...small.map((m) => ({ path: m.path, size: m.bytes.length, sha256: sha256(m.bytes) }))];
    if (opts.masterKey !== null) members.push({ path: MASTER_KEY_MEMBER, size: opts.masterKey.length, sha256: sha256(opts.masterKey) });
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      formatVersion: BACKUP_FORMAT_VERSION,
      dockfleetVersion: dockfleetVersion(),
      schemaVersion,
      createdAt: new Date().toISOString(),
      hub: hubInfo(small),
      masterKeyIncluded: opts.masterKey !== null,
      compression: ARCHIVE_COMPRESSION,
      members,
    };
    const tar = tarPack();
    const feeding = feed(tar, manifest, dbCopy, small, opts.masterKey);
    feeding.catch((err: Error) => tar.destroy(err));
    // tar → brotli → age: the pipeline passes a failure either way (age's destroy reaches the pack).
    const squeezed = compressor(members.reduce((sum, m) => sum + m.size, 0));
    const squeezing = pipeline(tar, squeezed);
    squeezing.catch(() => {}); // its error surfaces through the write (age reads SQUEEZED)
    let size: number;
    try {
      size = await writeEncrypted(squeezed, opts.sealTo, out);
    } catch (err) {
      feeding.catch(() => {}); // the pack was destroyed under it; the write's error is the one to tell
      throw err;
    }
    await feeding;
    await squeezing;
    return { file: out, size, manifest, skipped };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Writes the tar's entries in manifest order, each with backpressure. */
async function feed(tar: Pack, manifest: BackupManifest, dbCopy: string, small: SmallMember[], masterKey: Buffer | null): Promise<void> {
  const mtime = new Date(manifest.createdAt);
  const put = (name: string, bytes: Buffer): Promise<void> =>
    new Promise((done, fail) => {
      tar.entry({ name, size: bytes.length, mode: 0o600, mtime }, bytes, (err) => (err ? fail(err) : done()));
    });
  await put(MANIFEST_MEMBER, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
  const dbMember = manifest.members[0]!;
  await new Promise<void>((done, fail) => {
    const entry = tar.entry({ name: dbMember.path, size: dbMember.size, mode: 0o600, mtime }, (err) => (err ? fail(err) : done()));
    const source = createReadStream(dbCopy, { highWaterMark: 256 * 1024 });
    source.on('error', fail);
    source.pipe(entry);
  });
  for (const m of small) await put(m.path, m.bytes);
  if (masterKey !== null) await put(MASTER_KEY_MEMBER, masterKey);
  tar.finalize();
}

/** Every regular file of DIR except the live database's files, volume-backup ciphertext and hidden temp files. */
async function readDataFiles(dataDir: string, skipped: string[]): Promise<SmallMember[]> {
  const found: SmallMember[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dataDir, rel), { withFileTypes: true });
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (rel === '' && (entry.name === DATABASE_FILE || (EXCLUDED_FROM_DATA as readonly string[]).includes(entry.name))) continue;
      if (entry.name.startsWith('.')) continue; // temp files mid-write (rename targets come without the dot)
      const name = `${DATA_PREFIX}${relPath}`;
      const info = await lstat(join(dataDir, relPath));
      if (info.isDirectory()) await walk(relPath);
      else if (!info.isFile() || !isSafeMemberName(name)) skipped.push(relPath);
      else {
        if (info.size > MAX_SMALL_FILE) throw new DockfleetError('payload_too_large', `${join(dataDir, relPath)} is ${info.size} bytes: not a file the hub makes; move it out of the data directory`);
        const bytes = await readFile(join(dataDir, relPath)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return null; // replaced or removed by the hub while we looked
          throw err;
        });
        if (bytes !== null) found.push({ path: name, bytes });
      }
    }
  };
  await walk('');
  return found;
}

/** The backup carries a key only if it opens DIR's sealed CA key: a wrong key would make a useless archive. */
async function checkMasterKeyOpensCa(dataDir: string, key: Buffer): Promise<void> {
  if (!(await hubKeysSealed(dataDir))) return;
  const sealed = (await readFile(join(dataDir, 'pki', CA_KEY_FILE), 'utf8')).trim();
  try {
    new SecretBox(key).open(sealed, CA_KEY_CONTEXT);
  } catch {
    throw new DockfleetError(
      'master_key_mismatch',
      `the master key given does not open ${join(dataDir, 'pki', CA_KEY_FILE)}: it is not this hub's key (give the right one with --master-key FILE, or back up with --no-master-key)`,
    );
  }
}

function hubInfo(small: SmallMember[]): BackupManifest['hub'] {
  const info = small.find((m) => m.path === `${DATA_PREFIX}${HUB_INFO_FILE}`);
  try {
    const parsed = info ? (JSON.parse(info.bytes.toString('utf8')) as { url?: unknown; caDigest?: unknown }) : {};
    return { url: typeof parsed.url === 'string' ? parsed.url : null, caDigest: typeof parsed.caDigest === 'string' ? parsed.caDigest : null };
  } catch {
    return { url: null, caDigest: null };
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

function stagingError(err: unknown, out: string): DockfleetError {
  if (err instanceof DockfleetError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const message = (err as Error).message ?? String(err);
  if (code === 'ENOSPC' || code === 'SQLITE_FULL' || /disk is full|no space/i.test(message)) {
    return new DockfleetError('insufficient_storage', `no space left beside ${out} for the database copy: nothing was written (free space, or choose another --out)`);
  }
  return new DockfleetError('bad_request', `cannot copy the database beside ${out}: ${message}`);
}

function isInside(dir: string, path: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}
