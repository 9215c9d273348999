/** The absolute paths a unit's ExecStart runs: this node binary and this checkout's dockfleet. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface ProgramPaths {
  node: string;
  dockfleet: string;
}

export function programPaths(): ProgramPaths {
  return {
    node: realpathSync(process.execPath),
    dockfleet: realpathSync(fileURLToPath(new URL('../../../bin/dockfleet.js', import.meta.url))),
  };
}
