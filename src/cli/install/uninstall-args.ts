/**
 * What `dockfleet agent uninstall` and `dockfleet hub uninstall` share: their arguments
 * (`[--unit-dir DIR] [--purge [--state|--data DIR]]`) and taking the unit away. The caller then
 * removes its own state, only when `purge` is set and the directory is really its own.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../command.ts';
import { removeUnit, SYSTEM_UNIT_DIR } from './systemd-host.ts';

export interface Uninstall {
  purge: boolean;
  /** The directory given with --state / --data, if any. */
  dir: string | undefined;
}

/** Parses the arguments, removes the unit, and says whether (and which) state to purge. */
export async function uninstallUnit(args: string[], what: 'agent' | 'hub', unitName: string, dirFlag: 'state' | 'data', say: (line: string) => void): Promise<Uninstall> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { 'unit-dir': { type: 'string' }, purge: { type: 'boolean' }, [dirFlag]: { type: 'string' } },
  });
  if (positionals.length > 0) throw new UsageError(`${what} uninstall takes no arguments`);
  const dir = values[dirFlag] as string | undefined;
  if (dir !== undefined && !values.purge) throw new UsageError(`--${dirFlag} is read only with --purge`);
  await removeUnit({ unitName, unitDir: (values['unit-dir'] as string | undefined) ?? SYSTEM_UNIT_DIR }, say);
  return { purge: values.purge === true, dir };
}
