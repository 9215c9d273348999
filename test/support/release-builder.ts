/**
 * Agent releases for self-update tests (issue 16), built from this checkout: its code with another
 * version in package.json (and, for a bad release, a patch), packed as a gzipped tar, then signed
 * with a test release key and added to a hub's store through the real `dockfleet release` CLI.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnDockfleet } from './processes.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The version in this checkout's package.json: what an agent run from it reports. */
export const CHECKOUT_VERSION = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** A release package built in `work` from this checkout: its code, with `version` in package.json and `patch` applied. */
export async function buildRelease(work: string, version: string, patch?: (dir: string) => Promise<void>): Promise<string> {
  const dir = join(work, `build-${version}`);
  await mkdir(dir);
  for (const part of ['src', 'bin', 'package.json', 'package-lock.json']) await cp(join(ROOT, part), join(dir, part), { recursive: true });
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string };
  pkg.version = version;
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  await patch?.(dir);
  const out = join(work, `dockfleet-${version}.tgz`);
  await run('tar', ['-czf', out, '-C', dir, 'src', 'bin', 'package.json', 'package-lock.json']);
  return out;
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
