/**
 * This machine's systemd, as an installer sees it: is it the running init (sd_booted(3)'s test:
 * /run/systemd/system exists), which version is it, and the systemctl calls that load, start,
 * stop and remove a unit. Where systemd is not running, the calls are printed for the person to
 * run, never attempted.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileDurably } from '../../lib/write-file-durably.ts';

const run = promisify(execFile);

export const SYSTEM_UNIT_DIR = '/etc/systemd/system';

export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/** `systemd 252 (252.39-1~deb12u2)` → 252; null when no systemctl answers. */
export async function systemdVersion(): Promise<number | null> {
  try {
    const { stdout } = await run('systemctl', ['--version'], { timeout: 5_000 });
    const m = /^systemd (\d+)/.exec(stdout);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function systemctl(args: string[]): Promise<void> {
  try {
    await run('systemctl', args, { timeout: 60_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim().split('\n')[0];
    throw new Error(`systemctl ${args.join(' ')} failed${stderr ? `: ${stderr}` : ''}`);
  }
}

export interface Placement {
  unitName: string;
  unitDir: string;
}

/** Systemd loads units from SYSTEM_UNIT_DIR; a unit written anywhere else (--unit-dir) is only a file. */
export function managesUnits(p: Placement): boolean {
  return p.unitDir === SYSTEM_UNIT_DIR && systemdRunning();
}

export async function writeUnit(p: Placement, text: string): Promise<string> {
  await mkdir(p.unitDir, { recursive: true });
  const path = join(p.unitDir, p.unitName);
  await writeFileDurably(path, text, 0o644);
  return path;
}

/** Loads and starts the unit (and at every boot), or says what to run when systemd is not here. */
export async function enableNow(p: Placement, out: (line: string) => void): Promise<void> {
  if (managesUnits(p)) {
    await systemctl(['daemon-reload']);
    await systemctl(['enable', '--now', p.unitName]);
    out(`started ${p.unitName} (systemctl status ${p.unitName}; journalctl -u ${p.unitName})`);
    return;
  }
  out(
    p.unitDir === SYSTEM_UNIT_DIR
      ? `systemd is not running on this machine (no /run/systemd/system): nothing was started. Where it runs:`
      : `the unit was written outside ${SYSTEM_UNIT_DIR}: nothing was started. To run it as a service:`,
  );
  if (p.unitDir !== SYSTEM_UNIT_DIR) out(`  cp ${join(p.unitDir, p.unitName)} ${SYSTEM_UNIT_DIR}/`);
  out(`  systemctl daemon-reload && systemctl enable --now ${p.unitName}`);
}

/** Stops and disables the unit (when systemd runs it), then removes its file. */
export async function removeUnit(p: Placement, out: (line: string) => void): Promise<void> {
  const path = join(p.unitDir, p.unitName);
  const present = await stat(path).then(
    () => true,
    () => false,
  );
  if (managesUnits(p)) {
    if (present) await systemctl(['disable', '--now', p.unitName]);
  } else if (present) {
    out(`systemd does not run this unit here: nothing to stop (where it runs: systemctl disable --now ${p.unitName})`);
  }
  await rm(path, { force: true });
  if (managesUnits(p)) await systemctl(['daemon-reload']);
  out(present ? `removed ${path}` : `no ${path}: nothing to remove`);
}
