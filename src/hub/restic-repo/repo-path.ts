/**
 * What a request path of restic's REST protocol names, checked before anything touches the disk:
 * the repository itself (`/`), its `config`, a directory of one file type (`/keys/`), or one file
 * (`/data/<64 hex>`). Anything else — `..`, absolute paths, other names, encoded slashes — is
 * null, and the server answers 404 without looking.
 */
export const FILE_TYPES = ['data', 'keys', 'locks', 'snapshots', 'index'] as const;
export type FileType = (typeof FILE_TYPES)[number];

/** restic names every file but `config` by the SHA-256 of its contents, in hex. */
export const FILE_NAME = /^[0-9a-f]{64}$/;

export type RepoTarget = { kind: 'repo' } | { kind: 'config' } | { kind: 'dir'; type: FileType } | { kind: 'file'; type: FileType; name: string };

function isFileType(s: string): s is FileType {
  return (FILE_TYPES as readonly string[]).includes(s);
}

/** The target of `:path` (query excluded), or null. */
export function parseRepoPath(path: string): RepoTarget | null {
  if (path === '/') return { kind: 'repo' };
  if (path === '/config') return { kind: 'config' };
  const m = /^\/([a-z]+)\/([0-9a-f]{64})?$/.exec(path);
  if (!m || !isFileType(m[1]!)) return null;
  return m[2] === undefined ? { kind: 'dir', type: m[1] } : { kind: 'file', type: m[1], name: m[2] };
}

/** The most a file of each type may hold. restic's packs are 16 MiB by default and at most
 * 128 MiB (`--pack-size`); an index file holds at most 50,000 blobs' entries; the rest are small. */
export const MAX_FILE_BYTES: Readonly<Record<FileType | 'config', number>> = {
  data: 160 * 1024 * 1024,
  index: 160 * 1024 * 1024,
  snapshots: 16 * 1024 * 1024,
  keys: 1024 * 1024,
  locks: 1024 * 1024,
  config: 1024 * 1024,
};
