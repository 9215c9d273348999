/**
 * The files inside one Docker volume's directory on this host: list, download, upload, mkdir,
 * rename, remove. Every path is confined (confine.ts) and then used only through descriptors
 * checked after opening (open-inside.ts, anchored-dir.ts), so nothing a container plants in its
 * volume — links, swapped directories, FIFOs — can make the agent (root) act outside it.
 *
 * New files and directories take the owner of the directory they are made in, and a replaced
 * file keeps its owner and mode (minus set-id bits), so containers running as a non-root user
 * can still use what was uploaded for them.
 */
import { constants, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { AnchoredDir } from './anchored-dir.ts';
import { realRoot, resolveSegments, type ConfineOptions } from './confine.ts';
import { openInside } from './open-inside.ts';
import { removeTree } from './remove-tree.ts';
import { errnoCode, translateFsError } from './translate-fs-error.ts';
import { VolumeFileError } from './volume-file-error.ts';
import { compareEntries, toVolumeEntry, type VolumeEntry, type VolumeListing } from './volume-entry.ts';
import { displayPath, parseVolumePath, quotePath } from './volume-path.ts';
import { writeFileAtomic } from './write-file-atomic.ts';

/** Docker's own rule for volume names. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_VOLUME_NAME = 255;
export const DEFAULT_MAX_UPLOAD_BYTES = 1024 ** 3;
export const DEFAULT_MAX_LIST_ENTRIES = 10_000;

export interface VolumeFilesOptions {
  /**
   * The host directory holding the volume's files: the engine's `GET /volumes/NAME` →
   * `Mountpoint`. Null (or a thrown VolumeFileError 'not_found') when there is no such volume.
   * Only called with names matching VOLUME_NAME.
   */
  resolveMountpoint(volumeName: string): Promise<string | null>;
  /** Largest upload accepted, in bytes. Default 1 GiB. */
  maxUploadBytes?: number;
  /** Most entries one listing returns; past it the listing says `truncated`. Default 10 000. */
  maxListEntries?: number;
}

export interface VolumeFileDownload {
  stream: Readable;
  size: number;
  /** The last component of the requested path. */
  name: string;
}

export interface VolumeWriteOptions {
  overwrite: boolean;
  /** The body's declared length (Content-Length): any other length is refused, nothing kept. */
  expectedBytes?: number;
}

export interface VolumeWriteResult {
  path: string;
  size: number;
  /** False when an existing file was replaced. */
  created: boolean;
}

interface Located {
  root: string;
  segments: string[];
  hostPath: string;
}

export class VolumeFiles {
  readonly #resolveMountpoint: (volumeName: string) => Promise<string | null>;
  readonly #maxUploadBytes: number;
  readonly #maxListEntries: number;

  constructor(opts: VolumeFilesOptions) {
    this.#resolveMountpoint = opts.resolveMountpoint.bind(opts);
    this.#maxUploadBytes = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
    this.#maxListEntries = opts.maxListEntries ?? DEFAULT_MAX_LIST_ENTRIES;
  }

  get maxUploadBytes(): number {
    return this.#maxUploadBytes;
  }

  /** The directory at `path` (links inside the volume are followed). */
  async list(volume: string, path: string): Promise<VolumeListing> {
    try {
      const { root, segments, hostPath } = await this.#locate(volume, path, { mustExist: true });
      const dir = await openDir(root, hostPath, segments);
      try {
        const entries: VolumeEntry[] = [];
        let truncated = false;
        for await (const dirent of await fs.opendir(dir.path)) {
          if (entries.length >= this.#maxListEntries) {
            truncated = true;
            break;
          }
          const stats = await dir.lstat(dirent.name);
          if (stats === null) continue; // gone since readdir
          const linkTarget = stats.isSymbolicLink() ? await fs.readlink(dir.entry(dirent.name)).catch(() => undefined) : undefined;
          entries.push(toVolumeEntry(dirent.name, stats, linkTarget));
        }
        entries.sort(compareEntries);
        return { path: displayPath(segments), entries, truncated };
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw translateFsError(err, path);
    }
  }

  /** A regular file's contents. The caller must consume or destroy `stream` (that closes the file). */
  async openRead(volume: string, path: string): Promise<VolumeFileDownload> {
    try {
      const { root, segments, hostPath } = await this.#locate(volume, path, { mustExist: true });
      // Only regular files are opened at all: opening a device node a container made (mknod is
      // allowed by default) can have effects of its own. Checked again on the descriptor, and
      // O_NONBLOCK | O_NOCTTY keep a FIFO or tty swapped in meanwhile from parking or adopting us.
      assertRegularFile(await fs.lstat(hostPath), path);
      const handle = await openInside(root, hostPath, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      let size: number;
      try {
        size = assertRegularFile(await handle.stat(), path).size;
      } catch (err) {
        await handle.close().catch(() => {});
        throw err;
      }
      const name = segments.at(-1) ?? '';
      if (size === 0) {
        await handle.close();
        return { stream: Readable.from([], { objectMode: false }), size, name };
      }
      // Exactly the size announced, even if the file grows meanwhile.
      return { stream: handle.createReadStream({ start: 0, end: size - 1 }), size, name };
    } catch (err) {
      throw translateFsError(err, path);
    }
  }

  /**
   * Stores `source` at `path`, atomically: a partial, oversized or failed upload leaves nothing
   * behind. If this throws before reading `source`, it is left as it was.
   */
  async write(volume: string, path: string, source: Readable | AsyncIterable<Uint8Array>, opts: VolumeWriteOptions): Promise<VolumeWriteResult> {
    try {
      if (opts.expectedBytes !== undefined && opts.expectedBytes > this.#maxUploadBytes) {
        throw new VolumeFileError('too_large', `upload of ${opts.expectedBytes} bytes is larger than the limit of ${this.#maxUploadBytes} bytes`);
      }
      const { root, segments, hostPath } = await this.#locate(volume, path, { mustExist: false, forCreate: true });
      const dir = await openDir(root, posix.dirname(hostPath), segments.slice(0, -1));
      try {
        const name = posix.basename(hostPath);
        const existing = await dir.lstat(name);
        if (existing?.isDirectory()) throw new VolumeFileError('conflict', `${quotePath(path)} is a directory`);
        if (existing && !opts.overwrite) throw new VolumeFileError('conflict', `${quotePath(path)} already exists; upload with overwrite to replace it`);
        const kept = existing?.isFile() ? existing : null;
        const owner = kept ?? (await dir.stat());
        const size = await writeFileAtomic(dir, name, source, {
          overwrite: opts.overwrite,
          maxBytes: this.#maxUploadBytes,
          expectedBytes: opts.expectedBytes,
          mode: kept ? kept.mode & 0o1777 : 0o644,
          uid: owner.uid,
          gid: owner.gid,
        });
        return { path: displayPath(segments), size, created: existing === null };
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw translateFsError(err, path);
    }
  }

  /** One new directory (its parent must exist). */
  async mkdir(volume: string, path: string): Promise<{ path: string }> {
    try {
      const { root, segments, hostPath } = await this.#locate(volume, path, { mustExist: false, forCreate: true });
      const dir = await openDir(root, posix.dirname(hostPath), segments.slice(0, -1));
      try {
        const name = posix.basename(hostPath);
        const owner = await dir.stat();
        await fs.mkdir(dir.entry(name), 0o755);
        const made = await fs.open(dir.entry(name), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        try {
          await made.chown(owner.uid, owner.gid).catch(ignoreEperm);
        } finally {
          await made.close();
        }
        return { path: displayPath(segments) };
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw translateFsError(err, path);
    }
  }

  /** Moves `from` (the entry itself, a link is moved as a link) to `to`. */
  async rename(volume: string, from: string, to: string, opts: { overwrite?: boolean } = {}): Promise<{ from: string; to: string }> {
    let source: Located;
    let target: Located;
    try {
      source = await this.#locate(volume, from, { mustExist: true, noFollow: true });
    } catch (err) {
      throw translateFsError(err, from);
    }
    try {
      target = await this.#locate(volume, to, { mustExist: false, forCreate: true });
    } catch (err) {
      throw translateFsError(err, to);
    }
    let srcDir: AnchoredDir | undefined;
    let dstDir: AnchoredDir | undefined;
    try {
      srcDir = await openDir(source.root, posix.dirname(source.hostPath), source.segments.slice(0, -1));
      dstDir = await openDir(target.root, posix.dirname(target.hostPath), target.segments.slice(0, -1));
      const dstName = posix.basename(target.hostPath);
      if (!opts.overwrite && (await dstDir.lstat(dstName)) !== null) {
        throw new VolumeFileError('conflict', `${quotePath(to)} already exists; rename with overwrite to replace it`);
      }
      await fs.rename(srcDir.entry(posix.basename(source.hostPath)), dstDir.entry(dstName));
      return { from: displayPath(source.segments), to: displayPath(target.segments) };
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTDIR' || code === 'EISDIR') {
        throw new VolumeFileError('conflict', `cannot replace ${quotePath(to)} with ${quotePath(from)}: one is a directory and the other is not`, { cause: err });
      }
      throw translateFsError(err, code === 'ENOTEMPTY' || code === 'EEXIST' ? to : from);
    } finally {
      await srcDir?.close();
      await dstDir?.close();
    }
  }

  /** Removes the entry at `path` (a link is removed, never what it points to). */
  async remove(volume: string, path: string, opts: { recursive: boolean }): Promise<{ path: string }> {
    try {
      const { root, segments, hostPath } = await this.#locate(volume, path, { mustExist: true, noFollow: true });
      const dir = await openDir(root, posix.dirname(hostPath), segments.slice(0, -1));
      try {
        const name = posix.basename(hostPath);
        const stats = await dir.lstat(name);
        if (stats === null) throw new VolumeFileError('not_found', `no such file or directory: ${quotePath(path)}`);
        if (!stats.isDirectory()) await fs.unlink(dir.entry(name));
        else if (opts.recursive) await removeTree(dir.path, name);
        else {
          await fs.rmdir(dir.entry(name)).catch((err: unknown) => {
            if (errnoCode(err) !== 'ENOTEMPTY') throw err;
            throw new VolumeFileError('conflict', `${quotePath(path)} is a directory that is not empty; remove it with recursive`);
          });
        }
        return { path: displayPath(segments) };
      } finally {
        await dir.close();
      }
    } catch (err) {
      throw translateFsError(err, path);
    }
  }

  async #locate(volume: string, userPath: string, opts: ConfineOptions): Promise<Located> {
    if (volume.length > MAX_VOLUME_NAME || !VOLUME_NAME.test(volume)) {
      throw new VolumeFileError('bad_request', `invalid volume name ${quotePath(volume)}`);
    }
    const segments = parseVolumePath(userPath);
    const mountpoint = await this.#resolveMountpoint(volume);
    if (mountpoint === null) throw new VolumeFileError('not_found', `no such volume: ${volume}`);
    if (!posix.isAbsolute(mountpoint)) throw new Error(`mountpoint of volume ${volume} is not an absolute path`);
    const root = await realRoot(mountpoint);
    return { root, segments, hostPath: await resolveSegments(root, segments, userPath, opts) };
  }
}

/** The directory at `hostPath`; a file there is the caller's mistake, not a missing path. */
async function openDir(root: string, hostPath: string, segments: readonly string[]): Promise<AnchoredDir> {
  try {
    return await AnchoredDir.open(root, hostPath);
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR') throw new VolumeFileError('bad_request', `${quotePath(displayPath(segments))} is not a directory`, { cause: err });
    throw err;
  }
}

function assertRegularFile(stats: Stats, path: string): Stats {
  if (stats.isDirectory()) throw new VolumeFileError('bad_request', `${quotePath(path)} is a directory; list it instead`);
  if (!stats.isFile()) throw new VolumeFileError('bad_request', `${quotePath(path)} is not a regular file`);
  return stats;
}

function ignoreEperm(err: unknown): void {
  if (errnoCode(err) !== 'EPERM') throw err; // not root (a development run): keep our own
}
