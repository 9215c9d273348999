/**
 * Where a host path really leads, found the way the kernel walks it when the engine mounts
 * it: component by component, following a symlink at every component (at most 40, like the
 * kernel's own limit), `..` applied to where the walk has got to, not to the text. A tail
 * that does not exist yet is appended as written: the engine creates missing bind sources
 * with `mkdir -p`, which follows the symlinks in the part that exists.
 *
 * Paths that lead into procfs or sysfs (`/proc/self/root`, `/proc/PID/cwd`, …) stop the walk:
 * their links are "magic" — readlink shows a name, but the kernel follows the object, and
 * `/proc/self` in the engine is the engine itself — so they cannot be judged by reading them.
 *
 * The agent must share the mount namespace of the engine (it runs beside it on the host).
 */
import { lstat, readlink, statfs } from 'node:fs/promises';

/** Linux symlink-follow limit (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

/** statfs(2) magic numbers of the kernel filesystems whose links cannot be judged. */
const KERNEL_FS_TYPES: ReadonlySet<number> = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
]);
const KERNEL_DIRS = ['/proc', '/sys'];

export type Resolution =
  /** `path` is where the engine's mount lands (the missing tail, if any, appended). */
  | { kind: 'path'; path: string }
  /** The walk entered procfs or sysfs at `path` (the rest appended as written). */
  | { kind: 'kernel'; path: string }
  /** The path cannot be resolved here (ELOOP, EACCES, ENOTDIR, …): refuse it. */
  | { kind: 'unresolvable'; error: string };

const join = (dir: string, name: string): string => (dir === '/' ? `/${name}` : `${dir}/${name}`);
const parent = (dir: string): string => (dir === '/' ? '/' : dir.slice(0, dir.lastIndexOf('/')) || '/');
const inKernelDir = (path: string): boolean => KERNEL_DIRS.some((dir) => path === dir || path.startsWith(`${dir}/`));

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Components to walk, in the order they are taken (the stack's top is the last element). */
function pushComponents(stack: string[], path: string): void {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!);
}

async function isKernelFs(path: string): Promise<boolean> {
  if (inKernelDir(path)) return true;
  try {
    return KERNEL_FS_TYPES.has(Number((await statfs(path)).type));
  } catch {
    return false;
  }
}

/** Resolves the absolute `input` on this host. Never throws. */
export async function resolveHostPath(input: string): Promise<Resolution> {
  if (!input.startsWith('/') || input.includes('\0')) return { kind: 'unresolvable', error: 'not an absolute path' };
  const pending: string[] = [];
  pushComponents(pending, input);
  let current = '/';
  /** Components below `current` that do not exist (mkdir -p would create them). */
  const missing: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (name === '..') {
      if (missing.length > 0) missing.pop();
      else current = parent(current);
      continue;
    }
    if (missing.length > 0) {
      missing.push(name);
      continue;
    }
    const next = join(current, name);
    let stats;
    try {
      stats = await lstat(next);
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOENT') {
        missing.push(name);
        continue;
      }
      return { kind: 'unresolvable', error: `${code} at ${next}` };
    }
    if (stats.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return { kind: 'unresolvable', error: `ELOOP: more than ${MAX_SYMLINKS} symbolic links` };
      let target: string;
      try {
        target = await readlink(next);
      } catch (err) {
        return { kind: 'unresolvable', error: `${errorCode(err)} reading the link ${next}` };
      }
      if (target.startsWith('/')) current = '/';
      pushComponents(pending, target);
      continue;
    }
    if (!stats.isDirectory() && pending.length > 0) {
      return { kind: 'unresolvable', error: `ENOTDIR: ${next} is not a directory` };
    }
    current = next;
    if (await isKernelFs(current)) {
      const rest = pending.slice().reverse();
      return { kind: 'kernel', path: rest.length > 0 ? `${current}/${rest.join('/')}` : current };
    }
  }
  return { kind: 'path', path: missing.reduce(join, current) };
}
