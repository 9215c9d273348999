/**
 * The hub's scheduled-backup settings from flags, else the environment:
 *   --backup-every DURATION  DOCKFLEET_BACKUP_EVERY   e.g. 24h, 30m, 90s (at least 1s); turns the schedule on
 *   --backup-dir PATH        DOCKFLEET_BACKUP_DIR     where archives go (required with --backup-every; not inside DIR)
 *   --backup-keep N          DOCKFLEET_BACKUP_KEEP    how many archives to keep (default 7)
 *   --backup-recipient AGE   DOCKFLEET_BACKUP_RECIPIENT  encrypt to this age recipient instead of the passphrase
 *   --backup-no-master-key                            leave the master key out of the archives
 * A bad value stops the hub at start with one line naming it.
 */
import { resolve } from 'node:path';
import type { HubBackupConfig, HubFlags } from '../config.ts';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
export const BACKUP_KEEP_DEFAULT = 7;

export function backupScheduleFrom(flags: HubFlags, env: NodeJS.ProcessEnv): HubBackupConfig | null {
  const pick = (flag: keyof HubFlags, name: string): string | undefined => {
    const value = flags[flag];
    if (typeof value === 'string') return value;
    const fromEnv = env[name];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };
  const every = pick('backup-every', 'DOCKFLEET_BACKUP_EVERY');
  const dir = pick('backup-dir', 'DOCKFLEET_BACKUP_DIR');
  const keep = pick('backup-keep', 'DOCKFLEET_BACKUP_KEEP');
  const recipient = pick('backup-recipient', 'DOCKFLEET_BACKUP_RECIPIENT');
  if (every === undefined) {
    if (flags['backup-dir'] !== undefined || flags['backup-keep'] !== undefined || flags['backup-recipient'] !== undefined || flags['backup-no-master-key']) {
      throw new Error('--backup-dir, --backup-keep, --backup-recipient and --backup-no-master-key need --backup-every');
    }
    return null;
  }
  if (dir === undefined) throw new Error('--backup-every needs --backup-dir PATH (where the archives go)');
  return Object.freeze({
    everyMs: parseDuration(every),
    dir: resolve(dir),
    keep: keep === undefined ? BACKUP_KEEP_DEFAULT : parseKeep(keep),
    recipient: recipient ?? null,
    includeMasterKey: !flags['backup-no-master-key'],
  });
}

export function parseDuration(text: string): number {
  const match = /^([1-9][0-9]{0,8})(ms|s|m|h|d)$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNITS[match[2]!]! : NaN;
  if (!(ms >= 1_000)) throw new Error(`--backup-every wants a period of at least 1s such as 24h, 30m or 90s, not "${text}"`);
  return ms;
}

function parseKeep(text: string): number {
  if (!/^[1-9][0-9]{0,5}$/.test(text)) throw new Error(`--backup-keep wants a whole number from 1, not "${text}"`);
  return Number(text);
}
