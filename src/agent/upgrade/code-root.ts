/** Where the running agent's code lives (the checkout, or <state>/versions/<v>/) and its version,
 * read from that tree's package.json: what the agent reports to the hub. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The root of the tree this module was loaded from (src/agent/upgrade/ is three levels down). */
export const CODE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let cached: string | null = null;

export function runningVersion(): string {
  if (cached === null) {
    try {
      const pkg = JSON.parse(readFileSync(join(CODE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
      cached = typeof pkg.version === 'string' ? pkg.version.slice(0, 64) : 'dev';
    } catch {
      cached = 'dev';
    }
  }
  return cached;
}
