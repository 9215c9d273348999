/**
 * Stages a release beside the running version: verify it against the release key pinned at
 * enrollment (alone: whatever the hub said), unpack it into <state>/versions/<v>/, check that it is
 * the version it claims, settle which node_modules it runs with (its own, or the running agent's
 * when that holds every package its lock pins: dependencies.ts), and record the switch in
 * upgrade.json for the launcher. Nothing is installed unless all holds.
 */
import { mkdir, readFile, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { verifyRelease } from '../../lib/release-keys.ts';
import { runningVersion } from './code-root.ts';
import { dependencyGap, runningModulesDir } from './dependencies.ts';
import { extractRelease } from './extract-release.ts';
import type { UpgradeFiles } from './upgrade-files.ts';

export type StageOutcome = { ok: true; from: string; to: string } | { ok: false; reason: string };

export async function stageRelease(files: UpgradeFiles, pkg: Buffer, signature: unknown, to: string, trialMs: number): Promise<StageOutcome> {
  const key = await files.releaseKey();
  if (key === null) return { ok: false, reason: 'this agent was enrolled without a release key, so it accepts no upgrades (enroll it again from a hub started with --release-key)' };
  const check = verifyRelease(pkg, signature, key, to);
  if (!check.ok) return check;
  const from = runningVersion();
  if (from === to) return { ok: false, reason: `version ${to} is already running` };
  const dest = files.versionDir(to);
  const partial = `${dest}.partial-${process.pid}`;
  await mkdir(dirname(dest), { recursive: true, mode: 0o700 });
  await rm(partial, { recursive: true, force: true });
  try {
    await extractRelease(pkg, partial);
    const refusal = await checkTree(partial, to);
    if (refusal !== null) {
      await rm(partial, { recursive: true, force: true });
      return { ok: false, reason: refusal };
    }
    const modules = await modulesFor(partial);
    if ('refused' in modules) {
      await rm(partial, { recursive: true, force: true });
      return { ok: false, reason: modules.refused };
    }
    if (modules.borrowed) await symlink(await realpath(modules.dir), join(partial, 'node_modules'), 'dir');
    // A version left by an earlier, failed attempt is replaced (never the running one: checked above).
    await rm(dest, { recursive: true, force: true });
    await rename(partial, dest);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    return { ok: false, reason: `could not unpack the release: ${(err as Error).message}` };
  }
  await files.setPending({ from, to, trialMs });
  return { ok: true, from, to };
}

/** Why an unpacked tree cannot run here, or null. */
async function checkTree(dir: string, version: string): Promise<string | null> {
  let pkg: { name?: unknown; version?: unknown };
  try {
    pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    return 'the release holds no readable package.json';
  }
  if (pkg.name !== 'dockfleet' || pkg.version !== version) return `the release's package.json says ${String(pkg.name)} ${String(pkg.version)}, not dockfleet ${version}`;
  if (!(await stat(join(dir, 'bin', 'dockfleet.js')).catch(() => null))?.isFile()) return 'the release has no bin/dockfleet.js';
  return null;
}

/** The node_modules an unpacked release in `dir` will run with: its own, or the running agent's (to link). */
async function modulesFor(dir: string): Promise<{ dir: string; borrowed: boolean } | { refused: string }> {
  const own = join(dir, 'node_modules');
  if ((await stat(own).catch(() => null))?.isDirectory()) {
    const gap = await dependencyGap(dir, own);
    return gap === null ? { dir: own, borrowed: false } : { refused: `the release's own node_modules does not match its package-lock.json: ${gap}` };
  }
  const running = runningModulesDir();
  const gap = await dependencyGap(dir, running);
  if (gap === null) return { dir: running, borrowed: true };
  return { refused: `the release's dependencies differ from this agent's (${running}): ${gap}; build the release with them (dockfleet release pack --with-dependencies)` };
}
