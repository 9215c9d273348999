/** Where the agent serves a volume's files (its host-side browser), under the channel. */
export const VOLUME_FILES_PREFIX = '/_dockfleet/v1/volumes';

export function volumeFilesPath(volume: string, search: string): string {
  return `${VOLUME_FILES_PREFIX}/${encodeURIComponent(volume)}/files${search}`;
}
