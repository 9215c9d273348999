/**
 * `dockfleet hub install|uninstall`: run the hub as a systemd service (hub-unit.ts), or take the
 * service away again.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultMasterKeyFile, loadMasterKey } from '../../hub/backup/master-key.ts';
import { parseHostPort } from '../../lib/host-port.ts';
import { logSettingsFrom } from '../../lib/log-settings.ts';
import { UsageError } from '../command.ts';
import { HUB_DATA_DIR, HUB_UNIT, hubUnitText } from './hub-unit.ts';
import { programPaths } from './program-paths.ts';
import { enableNow, SYSTEM_UNIT_DIR, systemdVersion, writeUnit } from './systemd-host.ts';
import { uninstallUnit } from './uninstall-args.ts';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const LISTEN_FLAGS = ['listen', 'edge-listen', 'edge-http'] as const;

/**
 * A data directory outside the StateDirectory is made here, with its master key beside it: under
 * ProtectSystem=strict the hub may write DIR but not DIR's parent, where the key is made.
 */
async function prepareDataDir(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const fresh = (await readdir(dataDir)).length === 0;
  await loadMasterKey({ dataDir, create: fresh, env: {} });
}

async function install(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      listen: { type: 'string' },
      'edge-listen': { type: 'string' },
      'edge-http': { type: 'string' },
      'log-level': { type: 'string' },
      'unit-dir': { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError('hub install takes no arguments');
  const logLevel = values['log-level'] === undefined ? null : logSettingsFrom({ 'log-level': values['log-level'] }, {}).level;
  const listen = LISTEN_FLAGS.flatMap((flag) => {
    const value = values[flag];
    if (value === undefined) return [];
    parseHostPort(value, `--${flag}`);
    return [{ flag, value }];
  });
  const dataDir = resolve(values.data ?? HUB_DATA_DIR);
  if (dataDir !== HUB_DATA_DIR) await prepareDataDir(dataDir);
  const placement = { unitName: HUB_UNIT, unitDir: values['unit-dir'] ?? SYSTEM_UNIT_DIR };
  const path = await writeUnit(
    placement,
    hubUnitText({
      programs: programPaths(),
      dataDir,
      masterKeyFile: defaultMasterKeyFile(dataDir),
      listen,
      logLevel,
      systemdVersion: await systemdVersion(),
    }),
  );
  say(`wrote ${path}`);
  await enableNow(placement, say);
}

async function uninstall(args: string[]): Promise<void> {
  const { purge, dir } = await uninstallUnit(args, 'hub', HUB_UNIT, 'data', say);
  if (!purge) return;
  const dataDir = resolve(dir ?? HUB_DATA_DIR);
  // Only a directory a hub made (it holds admin.token) is removed: --purge --data / must do nothing.
  if (
    !(await stat(join(dataDir, 'admin.token')).then(
      () => true,
      () => false,
    ))
  ) {
    say(`${dataDir} holds no hub data (no admin.token): left as it is`);
    return;
  }
  await rm(dataDir, { recursive: true, force: true });
  await rm(defaultMasterKeyFile(dataDir), { force: true });
  say(`removed ${dataDir} and its master key`);
}

export async function runHubInstallCommand(verb: 'install' | 'uninstall', args: string[]): Promise<void> {
  return verb === 'install' ? install(args) : uninstall(args);
}
