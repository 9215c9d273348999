/**
 * Recursive removal that never follows a symbolic link, even one swapped in mid-way (the race
 * that `rm -r` implementations keep getting CVEs for). Each directory is opened with
 * O_DIRECTORY | O_NOFOLLOW and emptied through its own descriptor; links, files and anything
 * else are unlinked, which removes the name and never touches what a link points to.
 */
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import { fdPath } from './open-inside.ts';
import { errnoCode } from './translate-fs-error.ts';
import { VolumeFileError } from './volume-file-error.ts';

/** Each level holds one descriptor open while its children go. */
export const MAX_REMOVE_DEPTH = 256;

/** Removes entry `name` of the directory at `dirPath` (a descriptor path such as AnchoredDir.path). */
export async function removeTree(dirPath: string, name: string, depth = 0): Promise<void> {
  const target = `${dirPath}/${name}`;
  try {
    await fs.unlink(target);
    return;
  } catch (err) {
    // Linux says EISDIR for a directory; POSIX allows EPERM.
    const code = errnoCode(err);
    if (code !== 'EISDIR' && code !== 'EPERM') throw err;
  }
  if (depth >= MAX_REMOVE_DEPTH) {
    throw new VolumeFileError('conflict', `directory tree is more than ${MAX_REMOVE_DEPTH} levels deep; remove its deeper parts first`);
  }
  let handle;
  try {
    handle = await fs.open(target, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    // Replaced by a link or a file since the unlink attempt: that is now just a name to remove.
    if (code === 'ELOOP' || code === 'ENOTDIR') return fs.unlink(target);
    throw err;
  }
  try {
    const inside = fdPath(handle.fd);
    for (const child of await fs.readdir(inside)) await removeTree(inside, child, depth + 1);
  } finally {
    await handle.close().catch(() => {});
  }
  await fs.rmdir(target);
}
