/**
 * What a release needs at run time, read from its package-lock.json (npm's lockfile v2/v3): every
 * package under node_modules/ that is not only for development, with the version the lock pins.
 * The agent compares these with the tree it runs from before it reuses that tree for a new
 * version; `dockfleet release pack --with-dependencies` copies exactly these into a release.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface LockedPackage {
  /** The lock's key, e.g. node_modules/a/node_modules/@s/b. */
  path: string;
  /** The chain of package names from the top of node_modules, e.g. ['a', '@s/b']. */
  chain: string[];
  version: string;
  /** Installed only on some platforms (or only with optional dependencies): may be absent. */
  optional: boolean;
}

interface LockEntry {
  version?: unknown;
  dev?: unknown;
  devOptional?: unknown;
  optional?: unknown;
  link?: unknown;
}

/** The run-time packages of the lockfile in `dir`, or a sentence saying why there are none to read. */
export async function runtimePackages(dir: string): Promise<LockedPackage[] | { missing: string }> {
  let lock: { packages?: Record<string, LockEntry> };
  try {
    lock = JSON.parse(await readFile(join(dir, 'package-lock.json'), 'utf8')) as typeof lock;
  } catch (err) {
    return { missing: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'there is no package-lock.json' : 'its package-lock.json is not JSON' };
  }
  if (typeof lock.packages !== 'object' || lock.packages === null) return { missing: 'its package-lock.json is older than lockfile version 2 (no "packages")' };
  const out: LockedPackage[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev === true || entry.link === true) continue;
    const chain = path.slice('node_modules/'.length).split('/node_modules/');
    out.push({ path, chain, version: typeof entry.version === 'string' ? entry.version : '', optional: entry.optional === true || entry.devOptional === true });
  }
  return out;
}

/**
 * Where Node would find `pkg.chain`'s last package starting from `modulesDir` (a node_modules
 * directory): each link of the chain first in its parent's own node_modules, then further up,
 * as npm's hoisting puts it. Null when it is not there.
 */
export async function locateInstalled(modulesDir: string, chain: string[]): Promise<string | null> {
  const found: string[] = [];
  for (const name of chain) {
    let hit: string | null = null;
    for (let i = found.length - 1; i >= -1 && hit === null; i--) {
      const candidate = i >= 0 ? join(found[i]!, 'node_modules', name) : join(modulesDir, name);
      if ((await stat(join(candidate, 'package.json')).catch(() => null))?.isFile()) hit = candidate;
    }
    if (hit === null) return null;
    found.push(hit);
  }
  return found.at(-1) ?? null;
}

/** The version in an installed package's package.json, or null. */
export async function installedVersion(dir: string): Promise<string | null> {
  try {
    const v = (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : null;
  } catch {
    return null;
  }
}
