/**
 * Confinement: turns a caller's volume path into a host path that is inside the volume, or
 * refuses. The agent runs as root and the volume's contents are written by containers, so
 * every symbolic link in a volume is untrusted: each one met on the way is resolved
 * (realpath) and must land inside realpath(root).
 *
 * This check alone leaves a window between checking and using the path (a container may swap a
 * checked directory for a link). The operations close it: open-inside.ts opens with O_NOFOLLOW
 * and then reads back where the descriptor really is, and anchored-dir.ts does everything in a
 * directory relative to a descriptor held open, never by path again.
 *
 * Hard links are not a way out: a hard link to a file outside the volume can only be made by
 * someone who can already see both places (root on the host, or a container that has both
 * mounted — and then the file is in a volume it was given). A container can only link files it
 * can see, so the link names a file it was allowed to change anyway. Not checked here.
 */
import type { Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { PathRefused, VolumeFileError } from './volume-file-error.ts';
import { errnoCode } from './translate-fs-error.ts';
import { childPath, parseVolumePath, quotePath } from './volume-path.ts';

export interface ConfineOptions {
  /** The path must exist, else a not_found error. */
  mustExist: boolean;
  /**
   * The final component is about to be created or replaced (upload target, mkdir, rename
   * destination): only its parent is resolved, and must be an existing directory inside the
   * volume. A final component that already exists as a symbolic link is refused unless it
   * leads somewhere inside. The volume root itself is refused.
   */
  forCreate?: boolean;
  /**
   * The final component is addressed itself and never followed, whatever it is (remove, rename
   * source): only its parent is resolved. The volume root itself is refused. Wins over
   * forCreate.
   */
  noFollow?: boolean;
}

/** Whether `path` is `root` or below it; both must be absolute and normalised. */
export function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

/** realpath(root), with a missing directory reported as not_found. */
export async function realRoot(root: string): Promise<string> {
  try {
    const real = await fs.realpath(root);
    if (!(await fs.stat(real)).isDirectory()) throw new VolumeFileError('not_found', "the volume's directory on this host is not a directory");
    return real;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new VolumeFileError('not_found', "the volume's directory does not exist on this host", { cause: err });
    throw err;
  }
}

/**
 * The absolute host path for `userPath` inside `root`; throws PathRefused (with the reason) or a
 * VolumeFileError (not_found). By default every symbolic link, the last one included, is
 * followed, and the result is a real path with no links in it.
 */
export async function resolveInside(root: string, userPath: string, opts: ConfineOptions): Promise<string> {
  const segments = parseVolumePath(userPath);
  return resolveSegments(await realRoot(root), segments, userPath, opts);
}

/** resolveInside for an already real root and already parsed segments. */
export async function resolveSegments(root: string, segments: readonly string[], userPath: string, opts: ConfineOptions): Promise<string> {
  const shown = quotePath(userPath);
  if (!opts.forCreate && !opts.noFollow) {
    const walked = await walk(root, segments, opts.mustExist);
    if (walked.missing.length === 0) return walked.path;
    if (opts.mustExist) throw new VolumeFileError('not_found', `no such file or directory: ${shown}`);
    return walked.missing.reduce(childPath, walked.path);
  }

  const name = segments.at(-1);
  if (name === undefined) throw new PathRefused('the volume root itself cannot be created, replaced, moved or removed');
  const parentSegments = segments.slice(0, -1);
  const parent = await walk(root, parentSegments, true);
  const parentShown = quotePath(parentSegments.join('/') || '.');
  if (parent.missing.length > 0) throw new VolumeFileError('not_found', `no such directory: ${parentShown}`);
  if (!(await fs.stat(parent.path)).isDirectory()) throw new VolumeFileError('not_found', `no such directory: ${parentShown} is not a directory`);

  const target = childPath(parent.path, name);
  const existing = await lstatOrNull(target);
  if (existing === null) {
    if (opts.mustExist) throw new VolumeFileError('not_found', `no such file or directory: ${shown}`);
    return target;
  }
  if (existing.isSymbolicLink() && !opts.noFollow) {
    const real = await realpathOrNull(target);
    if (real === null || !isInside(real, root)) {
      throw new PathRefused(`path escapes the volume: ${shown} is a symbolic link that does not lead inside it`);
    }
  }
  return target;
}

interface Walked {
  /** Real path of the deepest existing component (inside root). */
  path: string;
  /** Segments after it that do not exist yet. */
  missing: string[];
}

/** Follows `segments` from `root` one at a time, resolving every symbolic link met on the way. */
async function walk(root: string, segments: readonly string[], mustExist: boolean): Promise<Walked> {
  let current = root;
  for (let i = 0; i < segments.length; i++) {
    const next = childPath(current, segments[i]!);
    const here = quotePath(segments.slice(0, i + 1).join('/'));
    let stats;
    try {
      stats = await fs.lstat(next);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return { path: current, missing: segments.slice(i) };
      if (code === 'ENOTDIR') {
        throw new VolumeFileError('not_found', `no such file or directory: ${quotePath(segments.slice(0, i).join('/'))} is not a directory`);
      }
      throw err;
    }
    if (!stats.isSymbolicLink()) {
      current = next;
      continue;
    }
    const real = await realpathOrNull(next);
    if (real === null) {
      // A link that leads nowhere (or loops): nothing to find through it, and nothing may be
      // created through it either, as where it would land is unchecked.
      if (mustExist || i < segments.length - 1) throw new VolumeFileError('not_found', `no such file or directory: ${here} is a symbolic link that leads nowhere`);
      throw new PathRefused(`path refused: ${here} is a symbolic link that leads nowhere`);
    }
    if (!isInside(real, root)) throw new PathRefused(`path escapes the volume: ${here} is a symbolic link to outside it`);
    current = real;
  }
  return { path: current, missing: [] };
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await fs.lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
}

async function realpathOrNull(path: string): Promise<string | null> {
  try {
    return await fs.realpath(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return null;
    throw err;
  }
}
