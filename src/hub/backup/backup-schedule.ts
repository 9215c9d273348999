/**
 * The hub backing itself up on a clock (`--backup-every 24h --backup-dir PATH --backup-keep N`):
 * one archive per period, named by its time (dockfleet-hub-YYYYMMDDTHHMMSSZ.age), the newest N
 * kept and older ones removed. The first run is one period after the newest archive already in
 * PATH (at once when there is none), so restarts do not skip or double a period. A failure is
 * logged and raised as a `hub-backup` alert; the next success clears it. The passphrase or
 * recipient was read at start from the environment or a file (backup-secrets.ts), never the database.
 * Each archive is made on a worker thread (hub-backup-off-thread.ts): the hub keeps answering while
 * age's scrypt and the compression run.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import type { ConditionSink } from '../alerts/alert-source.ts';
import { encrypterFor, type SealTo } from './backup-archive.ts';
import { sealToFrom } from './backup-secrets.ts';
import { createHubBackupOffThread } from './hub-backup-off-thread.ts';

export const HUB_BACKUP_ALERT = 'hub-backup';
const ALERT_KEY = `${HUB_BACKUP_ALERT}:failed`;
const ARCHIVE_NAME = /^dockfleet-hub-\d{8}T\d{6}(?:\d{3})?Z\.age$/;

export interface BackupScheduleSettings {
  readonly everyMs: number;
  readonly dir: string;
  readonly keep: number;
  readonly includeMasterKey: boolean;
}

export interface BackupScheduleDeps {
  settings: BackupScheduleSettings;
  dataDir: string;
  sealTo: SealTo;
  /** The hub's master key, carried in each archive unless the settings leave it out. */
  masterKey: Buffer;
  alerts: ConditionSink;
  log: Logger;
}

export class BackupSchedule {
  readonly #deps: BackupScheduleDeps;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;

  private constructor(deps: BackupScheduleDeps) {
    this.#deps = deps;
  }

  static async start(deps: BackupScheduleDeps): Promise<BackupSchedule> {
    const schedule = new BackupSchedule(deps);
    const newest = (await schedule.#archives()).at(-1);
    const due = newest === undefined ? 0 : (await stat(join(deps.settings.dir, newest))).mtimeMs + deps.settings.everyMs - Date.now();
    schedule.#arm(Math.max(0, due));
    return schedule;
  }

  #arm(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(
      () => {
        this.#running = this.#runOnce().finally(() => {
          this.#running = null;
          this.#arm(this.#deps.settings.everyMs);
        });
      },
      Math.min(delayMs, 0x7fffffff),
    );
    this.#timer.unref();
  }

  async #runOnce(): Promise<void> {
    const { settings, log, alerts } = this.#deps;
    const name = `dockfleet-hub-${new Date().toISOString().replace(/[-:.]/g, '')}.age`; // …20261201T235557289Z.age
    const out = join(settings.dir, name);
    try {
      const result = await createHubBackupOffThread({
        dataDir: this.#deps.dataDir,
        out,
        sealTo: this.#deps.sealTo,
        masterKey: settings.includeMasterKey ? this.#deps.masterKey : null,
      });
      const removed = await this.#prune();
      log.info({ file: out, bytes: result.size, removed }, 'scheduled hub backup written');
      alerts.clear(ALERT_KEY);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.error({ err: message, dir: settings.dir }, 'scheduled hub backup failed');
      alerts.raise(HUB_BACKUP_ALERT, {
        key: ALERT_KEY,
        severity: 'critical',
        node: null,
        subject: 'hub',
        title: 'Scheduled hub backup failed',
        detail: `Writing a backup into ${settings.dir} failed: ${message.slice(0, 1000)}`,
      });
    }
  }

  /** Removes all but the newest `keep` archives of ours; other files in the folder are left alone. */
  async #prune(): Promise<string[]> {
    const archives = await this.#archives();
    const old = archives.slice(0, Math.max(0, archives.length - this.#deps.settings.keep));
    for (const name of old) await unlink(join(this.#deps.settings.dir, name)).catch(() => {});
    return old;
  }

  /** Our archives in PATH, oldest first (their names sort by time). */
  async #archives(): Promise<string[]> {
    return (await readdir(this.#deps.settings.dir)).filter((n) => ARCHIVE_NAME.test(n)).sort();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }
}

/**
 * What `dockfleet hub` does first when backups are scheduled: checks the folder and reads the
 * passphrase or recipient, so a missing key or folder stops the hub before it listens.
 */
export async function prepareBackupSchedule(
  settings: BackupScheduleSettings & { recipient: string | null },
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ start(deps: Pick<BackupScheduleDeps, 'masterKey' | 'alerts' | 'log'>): Promise<BackupSchedule> }> {
  const dir = resolve(settings.dir);
  const data = resolve(dataDir);
  if (dir === data || dir.startsWith(`${data}/`)) throw new Error(`--backup-dir ${dir} is inside the data directory: keep backups elsewhere`);
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`--backup-dir ${dir} is not a directory`);
  const sealTo = await sealToFrom({ recipient: settings.recipient, env });
  encrypterFor(sealTo); // a bad recipient or a short passphrase stops the hub now, not at the first backup
  return { start: (deps) => BackupSchedule.start({ ...deps, settings, dataDir: data, sealTo }) };
}
