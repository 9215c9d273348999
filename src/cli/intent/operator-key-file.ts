/**
 * The operator keys kept on this machine (issue 13): `~/.dockfleet/operator-keys/<fingerprint>.pem`
 * (PKCS#8, mode 0600, in a 0700 directory; `DOCKFLEET_HOME` stands in for `~/.dockfleet`), and
 * the file `default` naming the key used when none is asked for. Only `dockfleet operator-key
 * create` writes here, and it never overwrites a key file. Readers refuse a key file that others
 * may read, as ssh does, and one whose key does not match its name.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DockfleetError } from '../../protocol/errors.ts';
import { OPERATOR_KEY } from '../../protocol/intent.ts';
import { IntentSigner } from '../../lib/intent-keys.ts';
import { OPERATOR_KEY_FINGERPRINT, operatorKeyFingerprint } from '../../lib/operator-key-fingerprint.ts';

const KEY_FILE = /^([0-9a-f]{20})\.pem$/;

export function dockfleetHome(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.DOCKFLEET_HOME;
  return override !== undefined && override !== '' ? override : join(homedir(), '.dockfleet');
}

export function operatorKeyDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(dockfleetHome(env), 'operator-keys');
}

/** The fingerprints of the keys kept here, sorted. */
export function localKeyIds(dir = operatorKeyDir()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.flatMap((n) => KEY_FILE.exec(n)?.[1] ?? []).sort();
}

/** The fingerprint named in `default`, when that file exists and names a key kept here. */
export function defaultKeyId(dir = operatorKeyDir()): string | null {
  let text: string;
  try {
    text = readFileSync(join(dir, 'default'), 'utf8').trim();
  } catch {
    return null;
  }
  return OPERATOR_KEY_FINGERPRINT.test(text) && localKeyIds(dir).includes(text) ? text : null;
}

/**
 * Which local key a command means: `key` (a fingerprint, a unique prefix of one, or the public
 * key itself), else the default key, else the only key; null when no key is kept here.
 */
export function chooseLocalKey(key: string | undefined, dir = operatorKeyDir()): string | null {
  const ids = localKeyIds(dir);
  if (key !== undefined) {
    const wanted = OPERATOR_KEY.test(key) ? operatorKeyFingerprint(key) : key.toLowerCase();
    const matches = ids.filter((id) => id.startsWith(wanted));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) throw new DockfleetError('bad_request', `${key} matches several operator keys here (${matches.join(', ')}); give more of it`);
    throw new DockfleetError('not_found', `no operator key ${key} in ${dir} (see dockfleet operator-key list)`);
  }
  if (ids.length === 0) return null;
  if (ids.length === 1) return ids[0]!;
  const chosen = defaultKeyId(dir);
  if (chosen === null) throw new DockfleetError('bad_request', `${dir} holds several operator keys and no default: name one with --key (see dockfleet operator-key list)`);
  return chosen;
}

/** The private key of a local key, checked: owner-only file, and the key its name says. */
export function readLocalKey(id: string, dir = operatorKeyDir()): IntentSigner {
  const file = join(dir, `${id}.pem`);
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    throw new DockfleetError('forbidden', `${file} may be read by others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`);
  }
  let signer: IntentSigner;
  try {
    signer = new IntentSigner(readFileSync(file, 'utf8'));
  } catch {
    throw new DockfleetError('bad_request', `${file} does not hold an Ed25519 private key (PKCS#8 PEM)`);
  }
  if (operatorKeyFingerprint(signer.publicKey) !== id) throw new DockfleetError('bad_request', `${file} holds another key than its name says`);
  return signer;
}

/**
 * A signer with the default (or the named) local operator key, for commands that sign intents
 * (`dockfleet connect`, jobs); null when this machine keeps no operator key.
 */
export function loadOperatorSigner(opts: { key?: string } = {}): IntentSigner | null {
  const dir = operatorKeyDir();
  const id = chooseLocalKey(opts.key, dir);
  return id === null ? null : readLocalKey(id, dir);
}

/**
 * Writes a new key file (0600, never over an existing one) in a 0700 directory, and makes it the
 * default when it is the first key here. Returns the file's path and whether it became the default.
 */
export async function saveLocalKey(id: string, privateKeyPem: string, dir = operatorKeyDir()): Promise<{ file: string; isDefault: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new DockfleetError('bad_request', `${dir} is not a directory`);
  if ((info.mode & 0o077) !== 0) {
    throw new DockfleetError('forbidden', `${dir} may be read by others (mode ${(info.mode & 0o777).toString(8)}); run chmod 700 on it`);
  }
  const first = (await readdir(dir)).every((n) => !KEY_FILE.test(n));
  const file = join(dir, `${id}.pem`);
  // O_EXCL: an existing file is never replaced; O_NOFOLLOW: nor a symlink followed.
  const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') throw new DockfleetError('conflict', `${file} already exists; it is left as it is`);
    throw err;
  });
  try {
    await handle.writeFile(privateKeyPem);
    await handle.chmod(0o600);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const isDefault = first || defaultKeyId(dir) === null;
  if (isDefault) await writeFile(join(dir, 'default'), `${id}\n`, { mode: 0o600 });
  return { file, isDefault };
}
