/**
 * One node's restic repository on the hub's disk: DIR/restic/<node>/<repo>/ with restic's own
 * layout (config, keys/, locks/, snapshots/, index/, data/<first two hex>/). Files are written
 * once: into DIR/restic/.tmp first, fsynced, then linked into place (link fails when the name is
 * taken, so a file is never replaced) and the directory fsynced. Every name comes from
 * repo-path.ts, never from the request as given.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FILE_NAME, FILE_TYPES, type FileType } from './repo-path.ts';

/** Node names are enrollment's (lowercase, digits, dashes); checked again before they name a folder. */
const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const TEMP_DIR = '.tmp';

export interface FileEntry {
  name: string;
  size: number;
}

/** Where every node's repositories live; clears what an earlier run left half-written. */
export async function openRepoRoot(root: string): Promise<string> {
  await rm(join(root, TEMP_DIR), { recursive: true, force: true });
  await mkdir(join(root, TEMP_DIR), { recursive: true, mode: 0o700 });
  return root;
}

export class RepoDir {
  readonly dir: string;
  readonly #tempDir: string;

  constructor(root: string, node: string, repo: string) {
    if (!NODE_NAME.test(node)) throw new Error(`not a node name: ${JSON.stringify(node)}`);
    this.dir = join(root, node, repo);
    this.#tempDir = join(root, TEMP_DIR);
  }

  async exists(): Promise<boolean> {
    return stat(this.dir).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }

  /** restic's `POST /?create=true`: the repository's folders (data's subfolders come as needed). */
  async create(): Promise<void> {
    for (const type of FILE_TYPES) await mkdir(join(this.dir, type), { recursive: true, mode: 0o700 });
  }

  pathOf(type: FileType | 'config', name: string): string {
    if (type === 'config') return join(this.dir, 'config');
    return type === 'data' ? join(this.dir, 'data', name.slice(0, 2), name) : join(this.dir, type, name);
  }

  /** The files of one type with their sizes; null when the repository has no such folder. */
  async list(type: FileType): Promise<FileEntry[] | null> {
    const base = join(this.dir, type);
    const folders = type === 'data' ? await readdirOrNull(base) : ['.'];
    if (folders === null) return null;
    const entries: FileEntry[] = [];
    for (const folder of folders) {
      if (folder !== '.' && !/^[0-9a-f]{2}$/.test(folder)) continue;
      const names = await readdirOrNull(join(base, folder));
      if (names === null) {
        if (folder === '.') return null;
        continue;
      }
      for (const name of names) {
        if (!FILE_NAME.test(name)) continue;
        const info = await stat(join(base, folder, name)).catch(() => null);
        if (info?.isFile()) entries.push({ name, size: info.size });
      }
    }
    return entries;
  }

  /** A new temp file for an upload (on the same file system as the repository). */
  async tempFile(): Promise<{ path: string; handle: FileHandle }> {
    const path = join(this.#tempDir, randomBytes(12).toString('hex'));
    return { path, handle: await open(path, 'wx', 0o600) };
  }

  /**
   * Moves a finished temp file into place; false when the name was taken (the temp file stays for
   * the caller to compare and remove).
   */
  async place(temp: string, type: FileType | 'config', name: string): Promise<boolean> {
    const target = this.pathOf(type, name);
    const folder = join(target, '..');
    if (type === 'data') await mkdir(folder, { recursive: true, mode: 0o700 });
    try {
      await link(temp, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    await unlink(temp);
    await syncDir(folder);
    return true;
  }

  /** Whether the file now at `type/name` holds what `temp` holds (a repeated upload). */
  async same(temp: string, type: FileType | 'config', name: string): Promise<boolean> {
    const [a, b] = await Promise.all([stat(temp), stat(this.pathOf(type, name))]);
    if (a.size !== b.size) return false;
    // Named by their hashes, equal names and sizes mean equal files; only config is compared.
    if (type !== 'config') return true;
    return (await readFile(temp)).equals(await readFile(this.pathOf(type, name)));
  }

  /** true when removed, false when there was no such file. */
  async remove(type: FileType | 'config', name: string): Promise<boolean> {
    try {
      await unlink(this.pathOf(type, name));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}

async function readdirOrNull(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
