/** One line of a directory listing, as the hub and its users see it. */
import type { Stats } from 'node:fs';

export type VolumeEntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface VolumeEntry {
  name: string;
  type: VolumeEntryType;
  /** Bytes (lstat: for a link, the length of its target text). */
  size: number;
  /** Permission bits in octal, e.g. "0644", "4755". */
  mode: string;
  /** ISO 8601, UTC. */
  modifiedAt: string;
  /** A link's target exactly as stored; it may point anywhere, but is only followed inside the volume. */
  linkTarget?: string;
}

export interface VolumeListing {
  /** The listed directory, normalised and volume-relative; "." is the root. */
  path: string;
  /** Directories first, then everything else; each group by name (code unit order). */
  entries: VolumeEntry[];
  /** True when the directory had more entries than the agent lists at once. */
  truncated: boolean;
}

export function entryType(stats: Stats): VolumeEntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'dir';
  if (stats.isFile()) return 'file';
  return 'other';
}

export function toVolumeEntry(name: string, stats: Stats, linkTarget?: string): VolumeEntry {
  const entry: VolumeEntry = {
    name,
    type: entryType(stats),
    size: stats.size,
    mode: (stats.mode & 0o7777).toString(8).padStart(4, '0'),
    modifiedAt: stats.mtime.toISOString(),
  };
  if (linkTarget !== undefined) entry.linkTarget = linkTarget;
  return entry;
}

export function compareEntries(a: VolumeEntry, b: VolumeEntry): number {
  const aDir = a.type === 'dir' ? 0 : 1;
  const bDir = b.type === 'dir' ? 0 : 1;
  if (aDir !== bDir) return aDir - bDir;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
