/**
 * Opening for real, after confine.ts checked the path. The final component is opened with
 * O_NOFOLLOW, so a file swapped for a symbolic link after the check is refused (ELOOP). A
 * directory higher up swapped for a link would still be followed by open(2), so the
 * descriptor's real location is read back from /proc/self/fd and must be inside the volume:
 * what was opened is judged, not what was asked for. Linux only.
 */
import { constants } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import { isInside } from './confine.ts';
import { PathRefused } from './volume-file-error.ts';
import { errnoCode } from './translate-fs-error.ts';

/** The path of descriptor `fd` as the kernel sees it (`/proc/self/fd/N`, a magic link). */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Where an open descriptor really is now. */
export async function fdLocation(fd: number): Promise<string> {
  let location: string;
  try {
    location = await fs.readlink(fdPath(fd));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new Error('volume file browsing needs Linux with /proc mounted', { cause: err });
    throw err;
  }
  return location.endsWith(' (deleted)') ? location.slice(0, -' (deleted)'.length) : location;
}

/**
 * Opens `path` (a result of resolveInside under `root`, both real paths) with `flags` plus
 * O_NOFOLLOW, and refuses — closing it again — if what got opened is not inside `root`.
 * Other errors (ENOENT, ELOOP, ENOTDIR, …) are thrown as they are.
 */
export async function openInside(root: string, path: string, flags: number, mode?: number): Promise<FileHandle> {
  const handle = await fs.open(path, flags | constants.O_NOFOLLOW, mode);
  try {
    const location = await fdLocation(handle.fd);
    if (!isInside(location, root)) throw new PathRefused('path escapes the volume: a directory on the way was replaced by a symbolic link while it was being opened');
    return handle;
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}
