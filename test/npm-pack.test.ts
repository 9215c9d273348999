/**
 * `npm pack` makes a package that installs and runs the way a user's machine would: the tarball
 * holds only what runs, `npm install FILE.tgz` into an empty folder brings every runtime
 * dependency (better-sqlite3 builds from source there), and the installed `dockfleet` answers
 * `--version` and starts a hub. It runs in the suite's two-at-a-time lane: the native build is
 * CPU-heavy but times nothing, and alone it would add its 2–3 minutes to the suite's length.
 *
 * The install prefers this machine's npm cache and asks the registry only for what the cache lacks
 * (`--prefer-offline`): `npm ci` caches the short form of each package's metadata, an install of
 * a tarball asks for the full one, so a strict `--offline` fails on a machine that only ever ran
 * `npm ci`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from './support/processes.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** The environment without what `npm test` sets for the repo's own package (npm_config_*, npm_package_*). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const root = await mkdtemp(join(tmpdir(), 'dockfleet-pack-'));
after(() => rm(root, { recursive: true, force: true }));

test('npm pack: the tarball holds bin, src, package.json and README only; installed from it, dockfleet --version prints the version and a hub starts', {
  timeout: INSTALL_TIMEOUT_MS + 120_000,
}, async (t) => {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; engines: { node: string } };
  assert.equal(pkg.engines.node, '>=20');
  assert.ok(pkg.dependencies.tsx, 'bin/dockfleet.js loads tsx at run time: it must be a dependency');

  const packDir = join(root, 'pack');
  await mkdir(packDir);
  const packed = await run('npm', ['pack', '--json', '--pack-destination', packDir], REPO, 120_000);
  assert.equal(packed.code, 0, packed.stderr);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  assert.ok(info);
  const paths = info.files.map((f) => f.path);
  const tops = new Set(paths.map((p) => p.split('/')[0]));
  assert.deepEqual([...tops].sort(), ['README.md', 'bin', 'package.json', 'src'], `top-level entries: ${[...tops].join(', ')}`);
  assert.ok(paths.includes('bin/dockfleet.js') && paths.includes('src/cli/main.ts'));

  const app = join(root, 'app');
  const installed = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', app, join(packDir, info.filename)], root, INSTALL_TIMEOUT_MS);
  assert.equal(installed.code, 0, `npm install failed:\n${installed.stderr.slice(-3000)}`);
  t.diagnostic(installed.stdout.trim().split('\n').at(-1) ?? '');

  const version = await run('npx', ['--no-install', 'dockfleet', '--version'], app, 60_000);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `${pkg.version}\n`);

  // The hub from the installed package (better-sqlite3's native module, the web UI's bundling):
  // in its own process group, so stopping it stops npx and the node it started, by their group id.
  const port = await freePort();
  const hub = spawn('npx', ['--no-install', 'dockfleet', 'hub', '--data', join(root, 'hub-data'), '--listen', `127.0.0.1:${port}`], {
    cwd: app,
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const stopHub = (): void => {
    try {
      process.kill(-hub.pid!, 'SIGTERM');
    } catch {}
  };
  t.after(stopHub);
  let out = '';
  let err = '';
  hub.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "hub ready" in 60 s; stdout: ${out.slice(-400)} stderr: ${err.slice(-800)}`)), 60_000);
    hub.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('hub ready'));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    hub.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited (${code}) before "hub ready"; stderr: ${err.slice(-800)}`));
    });
  });
  assert.match(ready, new RegExp(`^hub ready https://127\\.0\\.0\\.1:${port}`));
  const exited = new Promise((resolve) => hub.once('exit', resolve));
  stopHub();
  await exited;
});
