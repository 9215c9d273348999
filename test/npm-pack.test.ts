/**
 * `npm pack` makes a package that installs and runs the way a user's machine would: the tarball
 * holds only what runs (and the licence), `npm install FILE.tgz` into an empty folder brings every runtime
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
import { existsSync } from 'node:fs';
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
const app = join(root, 'app');

test('npm pack: the tarball holds bin, src, package.json, README and LICENSE only; installed from it, dockfleet --version prints the version and a hub starts', {
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
  assert.deepEqual([...tops].sort(), ['LICENSE', 'README.md', 'bin', 'package.json', 'src'], `top-level entries: ${[...tops].join(', ')}`);
  assert.ok(paths.includes('bin/dockfleet.js') && paths.includes('src/cli/main.ts'));

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

/** The installed package's own command (what npx runs), started directly so that its pid is the process to stop. */
function installed(args: string[], env: NodeJS.ProcessEnv = {}): { child: ReturnType<typeof spawn>; out: () => string; err: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [join(app, 'node_modules', '.bin', 'dockfleet'), ...args], { cwd: app, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function installedRun(args: string[]): Promise<string> {
  const p = installed(args);
  const code = await p.exited;
  assert.equal(code, 0, `dockfleet ${args.slice(0, 2).join(' ')}: ${p.err().slice(-1500)}`);
  return p.out();
}

async function waitForOutput(p: ReturnType<typeof installed>, pattern: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(p.out())) {
    if (p.child.exitCode !== null) throw new Error(`exited (${p.child.exitCode}) before ${pattern}: ${p.err().slice(-1500)}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} in ${ms} ms: ${p.err().slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('an agent installed from the package upgrades itself to a signed release that carries its dependencies', { timeout: 240_000 }, async (t) => {
  const pkgVersion = (JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  assert.ok(existsSync(join(app, 'node_modules', 'dockfleet', 'bin', 'dockfleet.js')), 'the first test installed the package');
  // npm never installs a package's lockfile: the agent cannot compare trees, so the release carries its own.
  assert.equal(existsSync(join(app, 'node_modules', 'dockfleet', 'package-lock.json')), false);

  const keyFile = join(root, 'release-key.pem');
  const publicKey = (await installedRun(['release-key', 'create', '--out', keyFile])).trim().split('\n').at(-1)!;
  const hubData = join(root, 'drill-hub');
  const port = await freePort();
  const hub = installed(['hub', '--data', hubData, '--listen', `127.0.0.1:${port}`, '--release-key', publicKey]);
  t.after(() => hub.child.kill('SIGTERM'));
  await waitForOutput(hub, /^hub ready /m, 60_000);
  const code = (await installedRun(['enroll', 'drill', '--data', hubData])).trim().split('\n').at(-1)!;
  const state = join(root, 'drill-agent');
  const agent = installed(['agent', '--hub', `https://127.0.0.1:${port}`, '--code', code, '--state', state, '--docker', 'unix:///nonexistent/dockfleet-test.sock'], {
    DOCKFLEET_UPGRADE_TRIAL_MS: '30000',
  });
  t.after(() => agent.child.kill('SIGTERM'));
  await waitForOutput(agent, /agent drill connected/, 60_000);

  // Packed by the installed command from the build checkout (where the lockfile is), then signed and added.
  const packed = await installedRun(['release', 'pack', '--from', REPO, '--version', '0.0.0-drill', '--with-dependencies', '--out', root]);
  const release = packed.trim().split('\n').at(-1)!;
  assert.equal(release, join(root, 'dockfleet-0.0.0-drill.tgz'));
  await installedRun(['release', 'sign', release, '--key', keyFile]);
  await installedRun(['release', 'add', release, '--data', hubData]);

  const upgraded = await installedRun(['agents', 'upgrade', '--to', '0.0.0-drill', '--wait', '--data', hubData]);
  assert.match(upgraded, new RegExp(`drill\\s+succeeded \\(from ${pkgVersion.replaceAll('.', '\\.')}\\)`));
  const children = (await readFile(`/proc/${agent.child.pid}/task/${agent.child.pid}/children`, 'utf8')).trim().split(/\s+/);
  assert.equal(children.length, 1, 'the launcher runs one agent');
  assert.match((await readFile(`/proc/${children[0]}/cmdline`, 'utf8')).replaceAll('\0', ' '), new RegExp(`${state}/versions/0\\.0\\.0-drill/bin/dockfleet\\.js agent`));
  const nodes = JSON.parse(await installedRun(['nodes', '--json', '--data', hubData])) as Array<{ name: string; status: string; agentVersion: string | null }>;
  assert.deepEqual(
    nodes.filter((n) => n.name === 'drill').map((n) => [n.status, n.agentVersion]),
    [['online', '0.0.0-drill']],
  );
});
