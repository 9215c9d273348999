/**
 * `dockfleet release pack`: an agent release from a checkout, as a gzipped tar in npm pack's
 * layout (package/…): bin, src, package.json and package-lock.json with the release's version, and
 * with --with-dependencies every run-time package the lock pins, copied from the checkout's
 * node_modules. `npm pack` leaves the lockfile out, and without it an agent cannot tell whether
 * the release may borrow its own packages, so releases are made here.
 */
import { createWriteStream } from 'node:fs';
import { lstat, readFile, readdir, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import tarStream from 'tar-stream';
import { installedVersion, locateInstalled, runtimePackages } from '../../lib/package-lock.ts';

/** The tree this CLI runs from (src/cli/release/ is three levels down). */
export const RUNNING_TREE = fileURLToPath(new URL('../../../', import.meta.url));

/** Entries carry one date, so that packing the same tree twice gives the same bytes. */
const MTIME = new Date('2026-01-01T00:00:00Z');

export interface PackOptions {
  from: string;
  version: string;
  withDependencies: boolean;
  /** The file to write (dockfleet-VERSION.tgz by convention). */
  out: string;
}

interface Entry {
  name: string;
  mode: number;
  read: () => Promise<Buffer>;
}

/** Files under `dir` (regular files only: links are left out, as the agent refuses them), as entries named under `as`. */
async function walk(dir: string, as: string, skipDir: (name: string) => boolean, into: Entry[]): Promise<void> {
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isDirectory()) {
      if (!skipDir(name)) await walk(path, `${as}/${name}`, skipDir, into);
    } else if (st.isFile()) {
      into.push({ name: `${as}/${name}`, mode: st.mode & 0o755, read: () => readFile(path) });
    }
  }
}

function withVersion(json: string, version: string, lock: boolean): Buffer {
  const doc = JSON.parse(json) as { version?: string; packages?: Record<string, { version?: string }> };
  doc.version = version;
  if (lock && doc.packages?.['']) doc.packages[''].version = version;
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

/** Packs the release; returns how many files it holds. */
export async function packRelease(opts: PackOptions): Promise<{ files: number }> {
  const { from, version } = opts;
  let pkgText: string;
  let lockText: string;
  try {
    [pkgText, lockText] = await Promise.all([readFile(join(from, 'package.json'), 'utf8'), readFile(join(from, 'package-lock.json'), 'utf8')]);
  } catch {
    throw new Error(`${from} is not a dockfleet checkout with a package-lock.json (release pack needs both)`);
  }
  if ((JSON.parse(pkgText) as { name?: unknown }).name !== 'dockfleet') throw new Error(`${from}/package.json is not dockfleet's`);
  const entries: Entry[] = [
    { name: 'package/package.json', mode: 0o644, read: async () => withVersion(pkgText, version, false) },
    { name: 'package/package-lock.json', mode: 0o644, read: async () => withVersion(lockText, version, true) },
  ];
  await walk(join(from, 'bin'), 'package/bin', () => false, entries);
  await walk(join(from, 'src'), 'package/src', () => false, entries);
  if (opts.withDependencies) await addDependencies(from, entries);

  const pack = tarStream.pack();
  const written = pipeline(pack, createGzip(), createWriteStream(opts.out, { mode: 0o644 }));
  for (const e of entries) {
    const body = await e.read();
    await new Promise<void>((resolve, reject) => pack.entry({ name: e.name, mode: e.mode, mtime: MTIME, size: body.length }, body, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await written;
  return { files: entries.length };
}

/** Each run-time package of the lock, found in `from`'s node_modules at the lock's version, placed at the lock's path. */
async function addDependencies(from: string, entries: Entry[]): Promise<void> {
  const wanted = await runtimePackages(from);
  if ('missing' in wanted) throw new Error(`cannot read the dependencies: ${wanted.missing}`);
  let modules: string;
  try {
    modules = await realpath(join(from, 'node_modules'));
  } catch {
    throw new Error(`${from} has no node_modules: run npm ci there first`);
  }
  for (const pkg of wanted) {
    const at = await locateInstalled(modules, pkg.chain);
    if (at === null) {
      if (pkg.optional) continue;
      throw new Error(`${pkg.path} is not installed in ${modules}: run npm ci first`);
    }
    const have = await installedVersion(at);
    if (have !== pkg.version) throw new Error(`${relative(from, at)} is ${have ?? 'unreadable'}, the lock pins ${pkg.version}: run npm ci first`);
    // Packages nested in this one are entries of the lock of their own (or only for development).
    await walk(at, `package/${pkg.path}`, (name) => name === 'node_modules', entries);
  }
}
