/**
 * Recognises the agent's volume-files path, `${VOLUME_FILES_PREFIX}/NAME/files` (the prefix and
 * the hub's path builder live in protocol/volume-files.ts). NAME is returned raw: volume names
 * only hold characters a URL never needs to encode, so anything encoded fails VOLUME_NAME.
 */
import { VOLUME_FILES_PREFIX } from '../../protocol/volume-files.ts';

/** The raw NAME segment of a volume-files path (query already cut off), or null for other paths. */
export function matchVolumeFilesPath(pathname: string): string | null {
  if (!pathname.startsWith(`${VOLUME_FILES_PREFIX}/`) || !pathname.endsWith('/files')) return null;
  const name = pathname.slice(VOLUME_FILES_PREFIX.length + 1, -'/files'.length);
  return name === '' || name.includes('/') ? null : name;
}
