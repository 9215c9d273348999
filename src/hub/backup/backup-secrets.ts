/**
 * Where a backup's passphrase, recipient or identity come from: the environment or a file, never
 * the hub's database and never a command-line argument that `ps` would show (a recipient is public,
 * so it may be one). DOCKFLEET_BACKUP_PASSPHRASE is removed from the environment once read, so no
 * child process inherits it.
 */
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DockfleetError } from '../../protocol/errors.ts';
import type { OpenWith, SealTo } from './backup-archive.ts';

export const PASSPHRASE_ENV = 'DOCKFLEET_BACKUP_PASSPHRASE';
export const PASSPHRASE_FILE_ENV = 'DOCKFLEET_BACKUP_PASSPHRASE_FILE';
export const RECIPIENT_ENV = 'DOCKFLEET_BACKUP_RECIPIENT';

/** The passphrase from the environment or its file, or null when neither is set. */
export async function passphraseFrom(env: NodeJS.ProcessEnv): Promise<string | null> {
  const direct = env[PASSPHRASE_ENV];
  if (direct !== undefined) {
    delete env[PASSPHRASE_ENV];
    if (direct === '') throw new DockfleetError('bad_request', `${PASSPHRASE_ENV} is empty`);
    return direct;
  }
  const file = env[PASSPHRASE_FILE_ENV];
  if (file === undefined || file === '') return null;
  const path = resolve(file);
  let text: string;
  try {
    if (((await stat(path)).mode & 0o077) !== 0) throw new DockfleetError('bad_request', `${path} (${PASSPHRASE_FILE_ENV}) is open to group or others: run chmod 600 ${path}`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof DockfleetError) throw err;
    throw new DockfleetError('bad_request', `cannot read ${path} (${PASSPHRASE_FILE_ENV}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const passphrase = text.replace(/\r?\n$/, '');
  if (passphrase === '') throw new DockfleetError('bad_request', `${path} (${PASSPHRASE_FILE_ENV}) is empty`);
  return passphrase;
}

/** For `backup` and the schedule: a recipient (flag, else DOCKFLEET_BACKUP_RECIPIENT) or the passphrase; exactly one. */
export async function sealToFrom(opts: { recipient: string | null; env: NodeJS.ProcessEnv }): Promise<SealTo> {
  const recipient = opts.recipient ?? (opts.env[RECIPIENT_ENV] || null);
  const passphrase = await passphraseFrom(opts.env);
  if (recipient !== null && passphrase !== null) {
    throw new DockfleetError('bad_request', `give either an age recipient or a passphrase (${PASSPHRASE_ENV}), not both`);
  }
  if (recipient !== null) return { kind: 'recipient', recipient };
  if (passphrase !== null) return { kind: 'passphrase', passphrase };
  throw new DockfleetError('bad_request', `no key to encrypt the backup to: set ${PASSPHRASE_ENV} (or ${PASSPHRASE_FILE_ENV}), or give --recipient age1…`);
}

/** For `restore`: an identity file, else the passphrase. */
export async function openWithFrom(opts: { identityFile: string | null; env: NodeJS.ProcessEnv }): Promise<OpenWith> {
  if (opts.identityFile !== null) {
    const path = resolve(opts.identityFile);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new DockfleetError('bad_request', `cannot read the identity file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const identity = text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.startsWith('AGE-SECRET-KEY-'));
    if (identity === undefined) throw new DockfleetError('bad_request', `${path} holds no age identity (a line AGE-SECRET-KEY-1…)`);
    return { kind: 'identity', identity };
  }
  const passphrase = await passphraseFrom(opts.env);
  if (passphrase === null) throw new DockfleetError('bad_request', `no key to open the archive: set ${PASSPHRASE_ENV} (or ${PASSPHRASE_FILE_ENV}), or give --identity FILE`);
  return { kind: 'passphrase', passphrase };
}
