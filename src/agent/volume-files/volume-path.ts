/**
 * The lexical half of confinement: a volume path is POSIX, relative to the volume root, and
 * arrives already decoded once (URLSearchParams did it). It is never decoded again here, so
 * `%2e%2e` is an ordinary six-character name. Backslashes are ordinary filename characters on
 * Linux, not separators. Empty segments collapse, `.` segments drop, `..` anywhere is refused
 * (even where it would stay inside: there is no reason to accept it).
 */
import { PathRefused, VolumeFileError } from './volume-file-error.ts';

/** Linux NAME_MAX and PATH_MAX; longer input is refused before touching the filesystem. */
export const MAX_SEGMENT_BYTES = 255;
export const MAX_PATH_BYTES = 4096;

export function quotePath(userPath: string): string {
  return JSON.stringify(userPath);
}

/** The segments of `userPath`, or a PathRefused / bad_request error. `[]` is the volume root. */
export function parseVolumePath(userPath: string): string[] {
  if (userPath.includes('\0')) throw new PathRefused('path refused: it contains a NUL byte');
  if (userPath.startsWith('/')) {
    throw new PathRefused(`path refused: ${quotePath(userPath)} is absolute; paths are relative to the volume root`);
  }
  if (Buffer.byteLength(userPath) > MAX_PATH_BYTES) {
    throw new VolumeFileError('bad_request', `path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  const segments = userPath.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) {
    throw new PathRefused(`path escapes the volume: ${quotePath(userPath)} has a ".." segment`);
  }
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) {
    throw new VolumeFileError('bad_request', `a name in ${quotePath(userPath)} is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return segments;
}

/** How a path is shown back: normalised, relative, `.` for the root (so `${path}/${name}` works). */
export function displayPath(segments: readonly string[]): string {
  return segments.length === 0 ? '.' : segments.join('/');
}

/** `dir/name` for a directory path with no trailing slash (only `/` itself has one). */
export function childPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}
