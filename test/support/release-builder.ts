/**
 * Agent releases for self-update tests (issue 16), built from this checkout: its code (and, for a
 * bad release, a patch), packed by `dockfleet release pack` with another version, then signed
 * with a test release key and added to a hub's store through the real `dockfleet release` CLI.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnDockfleet } from './processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The version in this checkout's package.json: what an agent run from it reports. */
export const CHECKOUT_VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * A release package built in `work` from this checkout by `dockfleet release pack`: its code with
 * `patch` applied. With dependencies, the build's node_modules links each of the checkout's
 * packages (so that a patch can put a changed copy of one in its place) and the release carries them.
 */
export async function buildRelease(work: string, version: string, patch?: (dir: string) => Promise<void>, opts: { withDependencies?: boolean } = {}): Promise<string> {
  const dir = join(work, `build-${version}`);
  await mkdir(dir);
  for (const part of ['src', 'bin', 'package.json', 'package-lock.json']) await cp(join(ROOT, part), join(dir, part), { recursive: true });
  if (opts.withDependencies) {
    await mkdir(join(dir, 'node_modules'));
    for (const name of await readdir(join(ROOT, 'node_modules'))) await symlink(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
  }
  await patch?.(dir);
  const p = spawnDockfleet(['release', 'pack', '--from', dir, '--version', version, '--out', work, ...(opts.withDependencies ? ['--with-dependencies'] : [])]);
  const { code } = await p.exited;
  assert.equal(code, 0, `dockfleet release pack: ${p.stderr()}`);
  const out = join(work, `dockfleet-${version}.tgz`);
  assert.equal(p.stdout().trim().split('\n').at(-1), out);
  return out;
}

/** A patch that gives the release's lock another version of `name` (a run-time package); with `copy`, also a copy of the package at that version in its node_modules. */
export function pinOtherVersion(name: string, version: string, copy: boolean): (dir: string) => Promise<void> {
  return async (dir) => {
    const lockFile = join(dir, 'package-lock.json');
    const lock = JSON.parse(await readFile(lockFile, 'utf8')) as { packages: Record<string, { version: string; dev?: boolean }> };
    const entry = lock.packages[`node_modules/${name}`];
    assert.ok(entry && !entry.dev, `${name} is a run-time package of the lock`);
    entry.version = version;
    await writeFile(lockFile, JSON.stringify(lock, null, 2));
    if (!copy) return;
    const target = join(dir, 'node_modules', name);
    await rm(target);
    await cp(join(ROOT, 'node_modules', name), target, { recursive: true });
    const pkg = JSON.parse(await readFile(join(target, 'package.json'), 'utf8')) as { version: string };
    pkg.version = version;
    await writeFile(join(target, 'package.json'), JSON.stringify(pkg));
  };
}

/** A patch that makes a release unable to connect: it dials a port where no hub listens. */
export async function cannotConnect(dir: string): Promise<void> {
  const file = join(dir, 'src', 'agent', 'hub-channel.ts');
  const text = await readFile(file, 'utf8');
  assert.ok(text.includes('await dialHub(opts.hubUrl, '), 'the dial the bad release breaks is still there');
  await writeFile(file, text.replace('await dialHub(opts.hubUrl, ', "await dialHub(new URL('https://127.0.0.1:9/'), "));
}

/** Signs `pkg` with the private key in `keyFile` and adds it to the store of the hub in `dataDir`. */
export async function publishRelease(dataDir: string, keyFile: string, pkg: string): Promise<void> {
  for (const args of [
    ['release', 'sign', pkg, '--key', keyFile],
    ['release', 'add', pkg],
  ]) {
    const p = spawnDockfleet([...args, '--data', dataDir]);
    const { code } = await p.exited;
    assert.equal(code, 0, `dockfleet ${args.slice(0, 2).join(' ')}: ${p.stderr()}`);
  }
}
