/**
 * A directory inside a volume, held open. Everything done in it goes through
 * `/proc/self/fd/N/<name>`: the kernel resolves that relative to the open descriptor, so once
 * the directory is open (and checked by openInside), swapping any part of its path for a
 * symbolic link cannot redirect what happens to its entries. `<name>` is always a single
 * component and, with lstat/unlink/rename/mkdir/link or O_NOFOLLOW, is itself never followed.
 */
import { constants, type Stats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import { fdPath, openInside } from './open-inside.ts';
import { errnoCode } from './translate-fs-error.ts';

export class AnchoredDir {
  readonly #handle: FileHandle;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  /** Opens the directory `path` (from resolveInside, under the real `root`). */
  static async open(root: string, path: string): Promise<AnchoredDir> {
    return new AnchoredDir(await openInside(root, path, constants.O_RDONLY | constants.O_DIRECTORY));
  }

  /** The directory itself, as a path the kernel resolves through the descriptor. */
  get path(): string {
    return fdPath(this.#handle.fd);
  }

  /** The entry `name` of this directory (one component, not followed by the callers). */
  entry(name: string): string {
    return `${this.path}/${name}`;
  }

  stat(): Promise<Stats> {
    return this.#handle.stat();
  }

  /** lstat of an entry, null when there is none. */
  async lstat(name: string): Promise<Stats | null> {
    try {
      return await fs.lstat(this.entry(name));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }
}
