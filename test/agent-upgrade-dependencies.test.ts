/**
 * Which packages a staged release may borrow (issue 16): the agent compares every run-time
 * package the release's lock pins with where Node would find it from the running tree, the way
 * npm lays trees out (hoisted to the top, nested under a package that needs another version,
 * optional platform packages absent), and names what differs. Development-only packages are
 * never asked for.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dependencyGap, runningModulesDir } from '../src/agent/upgrade/dependencies.ts';

const work = await mkdtemp(join(tmpdir(), 'dockfleet-deps-'));
after(() => rm(work, { recursive: true, force: true }));

const release = join(work, 'release');
const modules = join(work, 'installed', 'node_modules');

async function install(path: string, version: string): Promise<void> {
  await mkdir(join(modules, path), { recursive: true });
  await writeFile(join(modules, path, 'package.json'), JSON.stringify({ name: path.split('/node_modules/').at(-1), version }));
}

await mkdir(release);
await writeFile(
  join(release, 'package-lock.json'),
  JSON.stringify({
    lockfileVersion: 3,
    packages: {
      '': { name: 'dockfleet', version: '1.0.0' },
      'node_modules/a': { version: '1.0.0' },
      'node_modules/b': { version: '2.0.0' },
      'node_modules/a/node_modules/b': { version: '1.0.0' },
      'node_modules/@s/c': { version: '3.0.0' },
      'node_modules/@s/c-linux': { version: '3.0.0', optional: true },
      'node_modules/dev-only': { version: '9.0.0', dev: true },
    },
  }),
);
// What `npm install dockfleet` leaves: hoisted, one nested copy, the optional platform package missing.
await install('a', '1.0.0');
await install('b', '2.0.0');
await install('a/node_modules/b', '1.0.0');
await install('@s/c', '3.0.0');

test('a tree npm laid out (hoisted, nested, optional package absent, no dev packages) holds what the lock pins', async () => {
  assert.equal(await dependencyGap(release, modules), null);
});

test('a nested copy missing: Node would find the hoisted one, at another version, and that is named', async () => {
  await rm(join(modules, 'a', 'node_modules'), { recursive: true });
  try {
    assert.equal(await dependencyGap(release, modules), 'it needs b 1.0.0 (found 2.0.0)');
  } finally {
    await install('a/node_modules/b', '1.0.0');
  }
});

test('a run-time package absent or at another version is named; past four, the rest are counted', async () => {
  await rm(join(modules, '@s'), { recursive: true });
  await install('a', '1.0.1');
  try {
    assert.equal(await dependencyGap(release, modules), 'it needs a 1.0.0 (found 1.0.1), @s/c 3.0.0 (absent)');
  } finally {
    await install('a', '1.0.0');
    await install('@s/c', '3.0.0');
  }
  const many = join(work, 'many');
  await mkdir(many);
  const packages = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`node_modules/p${i}`, { version: '1.0.0' }]));
  await writeFile(join(many, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages }));
  assert.match((await dependencyGap(many, modules)) ?? '', /^it needs p0 1\.0\.0 \(absent\), .*p3 1\.0\.0 \(absent\) and 3 more$/);
});

test('a release without a lockfile, or with one too old to list packages, cannot be compared', async () => {
  const bare = join(work, 'bare');
  await mkdir(bare);
  assert.equal(await dependencyGap(bare, modules), 'its dependencies cannot be checked: there is no package-lock.json');
  await writeFile(join(bare, 'package-lock.json'), JSON.stringify({ lockfileVersion: 1, dependencies: {} }));
  assert.match((await dependencyGap(bare, modules)) ?? '', /older than lockfile version 2/);
});

test("the running agent's packages are this checkout's node_modules, and they hold what its own lock pins", async () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  // Node resolves packages to their real path (node_modules may be a link, as in a worktree).
  assert.equal(runningModulesDir(), await realpath(join(root, 'node_modules')));
  assert.equal(await dependencyGap(root, runningModulesDir()), null);
});
