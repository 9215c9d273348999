/**
 * An upload lands whole or not at all: bytes go to a fresh temporary file in the target's own
 * directory (created O_EXCL | O_NOFOLLOW through the anchored directory), are flushed, and the
 * file is then moved into place. Without overwrite the move is link(2), which fails if the name
 * exists — no window in which an existing file could be replaced. Any failure, a too-large or
 * short body included, removes the temporary file.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { AnchoredDir } from './anchored-dir.ts';
import { errnoCode } from './translate-fs-error.ts';
import { VolumeFileError } from './volume-file-error.ts';

export const TEMP_PREFIX = '.dockfleet-upload-';

export interface AtomicWriteOptions {
  overwrite: boolean;
  maxBytes: number;
  /** When known (Content-Length), a body of any other length is refused. */
  expectedBytes?: number;
  /** Applied to the new file before it is moved into place. */
  mode: number;
  uid: number;
  gid: number;
}

/** Writes `source` to entry `name` of `dir`; returns the number of bytes written. */
export async function writeFileAtomic(dir: AnchoredDir, name: string, source: AsyncIterable<Uint8Array>, opts: AtomicWriteOptions): Promise<number> {
  const temp = `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`;
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await fs.open(dir.entry(temp), flags, 0o600);
  let open = true;
  let tempExists = true;
  try {
    let size = 0;
    for await (const chunk of source) {
      size += chunk.length;
      if (size > opts.maxBytes) throw new VolumeFileError('too_large', `upload is larger than the limit of ${opts.maxBytes} bytes`);
      for (let off = 0; off < chunk.length; ) off += (await handle.write(chunk, off)).bytesWritten;
    }
    if (opts.expectedBytes !== undefined && size !== opts.expectedBytes) {
      throw new VolumeFileError('bad_request', `upload ended after ${size} of ${opts.expectedBytes} bytes; nothing was written`);
    }
    await handle.chmod(opts.mode);
    await handle.chown(opts.uid, opts.gid).catch((err: unknown) => {
      if (errnoCode(err) !== 'EPERM') throw err; // not root (a development run): keep our own
    });
    await handle.sync();
    open = false;
    await handle.close();
    if (opts.overwrite) {
      await fs.rename(dir.entry(temp), dir.entry(name));
      tempExists = false;
    } else {
      await linkOrMove(dir, temp, name);
      tempExists = (await dir.lstat(temp)) !== null;
    }
    return size;
  } finally {
    if (open) await handle.close().catch(() => {});
    if (tempExists) await fs.unlink(dir.entry(temp)).catch(() => {});
  }
}

/** link(2) where the filesystem has hard links; elsewhere check-then-rename (racy only against
 * another writer inside the same volume, which can replace the file afterwards anyway). */
async function linkOrMove(dir: AnchoredDir, temp: string, name: string): Promise<void> {
  try {
    await fs.link(dir.entry(temp), dir.entry(name));
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    if ((await dir.lstat(name)) !== null) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
    await fs.rename(dir.entry(temp), dir.entry(name));
  }
}
