/**
 * Which node_modules a staged release runs with. A release that carries its own (built with
 * `dockfleet release pack --with-dependencies`) keeps it, after checking that it holds what the
 * release's package-lock.json pins. Otherwise the release borrows the running agent's tree, and
 * only if every run-time package the release's lock pins is there at that exact version: a
 * checkout's own node_modules, or the one npm installed dockfleet into (hoisted or nested).
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { installedVersion, locateInstalled, runtimePackages } from '../../lib/package-lock.ts';
import { CODE_ROOT } from './code-root.ts';

/** The node_modules directory the running code resolves its packages from. */
export function runningModulesDir(): string {
  // ws is a run-time dependency with a plain name: where Node finds it is where the others are.
  let dir = dirname(createRequire(join(CODE_ROOT, 'package.json')).resolve('ws'));
  while (basename(dir) !== 'node_modules') {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot tell where the running agent's packages are (ws resolves outside any node_modules)`);
    dir = up;
  }
  return dir;
}

const SHOWN = 4;

/** Null when `modulesDir` holds every run-time package the lockfile in `releaseDir` pins, at its version; else what differs. */
export async function dependencyGap(releaseDir: string, modulesDir: string): Promise<string | null> {
  const wanted = await runtimePackages(releaseDir);
  if ('missing' in wanted) return `its dependencies cannot be checked: ${wanted.missing}`;
  const gaps: string[] = [];
  for (const pkg of wanted) {
    const at = await locateInstalled(modulesDir, pkg.chain);
    const name = pkg.chain.at(-1)!;
    if (at === null) {
      if (!pkg.optional) gaps.push(`${name} ${pkg.version} (absent)`);
      continue;
    }
    const have = await installedVersion(at);
    if (have !== pkg.version) gaps.push(`${name} ${pkg.version} (found ${have ?? 'unreadable'})`);
  }
  if (gaps.length === 0) return null;
  const more = gaps.length > SHOWN ? ` and ${gaps.length - SHOWN} more` : '';
  return `it needs ${gaps.slice(0, SHOWN).join(', ')}${more}`;
}
