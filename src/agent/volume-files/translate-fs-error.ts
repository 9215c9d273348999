/**
 * Filesystem errors as the caller should see them. Node's own messages carry host paths, so
 * they are never passed on: known codes become a VolumeFileError about the caller's path,
 * anything else is returned unchanged (the HTTP layer logs it and answers a generic 500).
 */
import { PathRefused, VolumeFileError } from './volume-file-error.ts';
import { quotePath } from './volume-path.ts';

export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

export function translateFsError(err: unknown, userPath: string): unknown {
  if (err instanceof VolumeFileError) return err;
  const p = quotePath(userPath);
  const opts = { cause: err };
  switch (errnoCode(err)) {
    case 'ENOENT':
      return new VolumeFileError('not_found', `no such file or directory: ${p}`, opts);
    case 'ENOTDIR':
      return new VolumeFileError('not_found', `no such file or directory: ${p} (a part of it is not a directory)`, opts);
    case 'EEXIST':
      return new VolumeFileError('conflict', `${p} already exists`, opts);
    case 'ENOTEMPTY':
      return new VolumeFileError('conflict', `${p} is a directory that is not empty`, opts);
    case 'EISDIR':
      return new VolumeFileError('conflict', `${p} is a directory`, opts);
    case 'EBUSY':
      return new VolumeFileError('conflict', `${p} is busy (a mount point?)`, opts);
    case 'EROFS':
      return new VolumeFileError('conflict', `the volume is on a read-only filesystem`, opts);
    case 'ELOOP':
      return new PathRefused(`path refused: ${p} is (or became) a symbolic link, which is not followed here`, opts);
    case 'EACCES':
    case 'EPERM':
      return new PathRefused(`the host refused the operation on ${p}: permission denied`, opts);
    case 'EINVAL':
      return new VolumeFileError('bad_request', `invalid operation on ${p} (moving a directory inside itself?)`, opts);
    case 'EXDEV':
      return new VolumeFileError('bad_request', `cannot move ${p} across filesystems`, opts);
    case 'ENAMETOOLONG':
      return new VolumeFileError('bad_request', `path ${p} is too long`, opts);
    case 'ENOSPC':
    case 'EDQUOT':
      return new VolumeFileError('no_space', `no space left for ${p} on the volume's filesystem`, opts);
    default:
      return err;
  }
}
