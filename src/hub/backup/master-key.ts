/**
 * Where the hub's master key comes from: the 32-byte key that seals every secret the hub keeps
 * (secret-box.ts). It never lives in the data directory, so a copy of DIR (or of its database)
 * opens none of them. Looked for in this order:
 *   1. DOCKFLEET_MASTER_KEY: base64 of 32 bytes; removed from the environment once read, so no
 *      child process inherits it;
 *   2. a systemd credential, $CREDENTIALS_DIRECTORY/dockfleet-master-key (32 bytes, raw or base64);
 *   3. `--master-key FILE`, or DOCKFLEET_MASTER_KEY_FILE;
 *   4. the default file beside DIR: `<parent of DIR>/<name of DIR>.master.key`.
 * A key file holds exactly 32 raw bytes, mode 0600; one readable by group or others is refused.
 * A file is made only on a first start (nothing sealed yet); otherwise a missing key stops the hub.
 * Hubs from before kept the key at DIR/secrets.key: it is moved to the chosen file (write, fsync,
 * link, then unlink the old one), or dropped when the key comes from the environment or systemd and
 * is the same; two different keys stop the hub rather than pick one.
 * Messages name paths and sources, never a key's bytes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { DockfleetError } from '../../protocol/errors.ts';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_ENV = 'DOCKFLEET_MASTER_KEY';
export const MASTER_KEY_FILE_ENV = 'DOCKFLEET_MASTER_KEY_FILE';
/** The credential's name under systemd's $CREDENTIALS_DIRECTORY (LoadCredential=, SetCredentialEncrypted=). */
export const MASTER_KEY_CREDENTIAL = 'dockfleet-master-key';
/** Where hubs before this one kept the key: inside DIR. Only ever read, to move it out. */
const LEGACY_KEY_FILE = 'secrets.key';
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/;

export type MasterKeySource = { kind: 'env' } | { kind: 'credential'; path: string } | { kind: 'file'; path: string; chosenBy: 'flag' | 'env' | 'default' };

export interface MasterKeyOptions {
  dataDir: string;
  /** `--master-key FILE`; null or absent: DOCKFLEET_MASTER_KEY_FILE, else the default file. */
  file?: string | null;
  /** Defaults to process.env (DOCKFLEET_MASTER_KEY is deleted from it once read). */
  env?: NodeJS.ProcessEnv;
  /** May a new key be made when none is found? Only when nothing in DIR is sealed yet. */
  create?: boolean;
}

export interface MasterKey {
  key: Buffer;
  source: MasterKeySource;
}

/** `/var/lib/dockfleet` → `/var/lib/dockfleet.master.key`: beside DIR, never in it. */
export function defaultMasterKeyFile(dataDir: string): string {
  const dir = resolve(dataDir);
  return join(dirname(dir), `${basename(dir)}.master.key`);
}

/** Which source the key comes from (the first present in the documented order); reads nothing. */
export function masterKeySource(opts: Pick<MasterKeyOptions, 'dataDir' | 'file' | 'env'>): MasterKeySource {
  const env = opts.env ?? process.env;
  if (env[MASTER_KEY_ENV] !== undefined) return { kind: 'env' };
  const creds = env.CREDENTIALS_DIRECTORY;
  if (creds !== undefined && creds !== '') {
    const path = join(creds, MASTER_KEY_CREDENTIAL);
    if (existsSync(path)) return { kind: 'credential', path };
  }
  if (opts.file !== undefined && opts.file !== null) return { kind: 'file', path: resolve(opts.file), chosenBy: 'flag' };
  const fromEnv = env[MASTER_KEY_FILE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { kind: 'file', path: resolve(fromEnv), chosenBy: 'env' };
  return { kind: 'file', path: defaultMasterKeyFile(opts.dataDir), chosenBy: 'default' };
}

export function describeSource(source: MasterKeySource): string {
  switch (source.kind) {
    case 'env':
      return `the ${MASTER_KEY_ENV} environment variable`;
    case 'credential':
      return `the systemd credential ${source.path}`;
    case 'file':
      return `the key file ${source.path}`;
  }
}

/** Finds (or, on a first start, makes) the master key, moving a key left inside DIR out of it. */
export async function loadMasterKey(opts: MasterKeyOptions): Promise<MasterKey> {
  const env = opts.env ?? process.env;
  const dataDir = resolve(opts.dataDir);
  const source = masterKeySource({ ...opts, env });
  const legacyPath = join(dataDir, LEGACY_KEY_FILE);
  const legacy = await readKeyFile(legacyPath, 'the old master key inside the data directory');

  if (source.kind === 'env' || source.kind === 'credential') {
    const key = source.kind === 'env' ? keyFromEnv(env) : await keyFromCredential(source.path);
    if (legacy !== null) {
      if (!sameKey(key, legacy)) throw mismatch(legacyPath, describeSource(source));
      await removeDurably(legacyPath); // the same key is kept elsewhere: no copy stays in DIR
    }
    return { key, source };
  }

  const target = source.path;
  if (isInside(dataDir, target)) {
    throw new DockfleetError('master_key_unsafe', `the master key file ${target} is inside the data directory ${dataDir}: keep it outside (a copy of the directory would carry it)`);
  }
  const existing = await readKeyFile(target, 'the master key file');
  if (legacy !== null) {
    if (existing !== null) {
      if (!sameKey(existing, legacy)) throw mismatch(legacyPath, describeSource(source));
    } else {
      await installKeyFile(target, legacy);
    }
    await removeDurably(legacyPath);
    return { key: legacy, source };
  }
  if (existing !== null) return { key: existing, source };
  if (!opts.create) {
    throw new DockfleetError(
      'master_key_missing',
      `no master key: ${target} does not exist, and ${dataDir} holds secrets sealed under a master key. ` +
        `Give it with --master-key FILE, ${MASTER_KEY_FILE_ENV}, ${MASTER_KEY_ENV} or the systemd credential ${MASTER_KEY_CREDENTIAL}`,
    );
  }
  const made = await installKeyFile(target, randomBytes(MASTER_KEY_BYTES));
  return { key: made, source };
}

function keyFromEnv(env: NodeJS.ProcessEnv): Buffer {
  const value = (env[MASTER_KEY_ENV] ?? '').trim();
  delete env[MASTER_KEY_ENV]; // read once: children spawned later never see it
  if (!BASE64_KEY.test(value)) {
    throw new DockfleetError('master_key_unsafe', `${MASTER_KEY_ENV} must be the base64 of exactly ${MASTER_KEY_BYTES} bytes (e.g. from: head -c 32 /dev/urandom | base64)`);
  }
  return Buffer.from(value, 'base64');
}

async function keyFromCredential(path: string): Promise<Buffer> {
  const raw = await readFile(path);
  if (raw.length === MASTER_KEY_BYTES) return raw;
  const text = raw.toString('latin1').trim();
  if (BASE64_KEY.test(text)) return Buffer.from(text, 'base64');
  throw new DockfleetError('master_key_unsafe', `the systemd credential ${path} must hold ${MASTER_KEY_BYTES} bytes, raw or in base64`);
}

/** A key file's 32 bytes, or null when there is none. Unsafe permissions or a wrong size stop here. */
async function readKeyFile(path: string, what: string): Promise<Buffer | null> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (!info.isFile()) throw new DockfleetError('master_key_unsafe', `${what} ${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0');
    throw new DockfleetError('master_key_unsafe', `${what} ${path} is open to group or others (mode ${mode}): run chmod 600 ${path}`);
  }
  if (info.size !== MASTER_KEY_BYTES) {
    throw new DockfleetError('master_key_unsafe', `${what} ${path} must hold exactly ${MASTER_KEY_BYTES} bytes, not ${info.size}`);
  }
  const key = await readFile(path);
  if (key.length !== MASTER_KEY_BYTES) throw new DockfleetError('master_key_unsafe', `${what} ${path} changed while it was read`);
  return key;
}

/**
 * Writes KEY to PATH (0600) without ever replacing a file there: a temporary file is written and
 * fsynced, then hard-linked into place (which fails if PATH appeared meanwhile) and the directory
 * fsynced. When another hub won the race, its key is the one used, if it is the same.
 */
async function installKeyFile(path: string, key: Buffer): Promise<Buffer> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      const other = await readKeyFile(path, 'the master key file');
      if (other !== null && sameKey(other, key)) return other;
      throw mismatch(path, 'a master key file written by another start at the same time');
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT') {
      throw new DockfleetError('master_key_missing', `cannot write the master key file ${path} (${code}): give a writable place with --master-key FILE, or the key through ${MASTER_KEY_ENV}`);
    }
    throw err;
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDir(dir);
  return key;
}

async function removeDurably(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function mismatch(legacyOrTarget: string, other: string): DockfleetError {
  return new DockfleetError(
    'master_key_mismatch',
    `two different master keys: ${legacyOrTarget} and ${other}. Keep the one this data directory was sealed under and move the other away; nothing was changed`,
  );
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}
