/**
 * The outcomes of the runs the agent carries out on its own (scheduled backups and
 * verifications): the latest of each per volume, kept in the state dir (written whole and
 * atomically after every change) so that a hub that was away hears them when the link
 * returns. The schedule also reads them back as its memory of when each volume last ran.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import { escrowReport, volumeBackupReport, type BackupOutcome, type EscrowReport, type VerifyOutcome, type VolumeBackupReport } from '../../protocol/volume-backup.ts';

export const REPORTS_FILE = 'backup-reports.json';
const reportsFile = z.strictObject({ reports: z.array(volumeBackupReport).max(10_000), escrows: z.array(escrowReport).max(1_000).optional() });

export class BackupReports extends EventEmitter<{ change: [] }> {
  readonly #path: string;
  readonly #byVolume = new Map<string, VolumeBackupReport>();
  /** Keys scheduled backups made under escrow custody, wrapped: kept until the hub has them (it keeps the first per repository). */
  readonly #escrows = new Map<string, EscrowReport>();
  #writing: Promise<void> = Promise.resolve();

  private constructor(stateDir: string) {
    super();
    this.#path = join(stateDir, REPORTS_FILE);
  }

  /** Reads what an earlier run kept; an unreadable file is started afresh (the hub keeps its own copy). */
  static async open(stateDir: string): Promise<BackupReports> {
    const reports = new BackupReports(stateDir);
    const text = await readFile(reports.#path, 'utf8').catch(() => null);
    if (text !== null) {
      let raw: unknown = null;
      try {
        raw = JSON.parse(text);
      } catch {
        /* started afresh below */
      }
      const parsed = reportsFile.safeParse(raw);
      if (parsed.success) {
        for (const r of parsed.data.reports) reports.#byVolume.set(r.volume, r);
        for (const e of parsed.data.escrows ?? []) reports.#escrows.set(e.repository, e);
      }
    }
    return reports;
  }

  get(volume: string): VolumeBackupReport | null {
    return this.#byVolume.get(volume) ?? null;
  }

  list(): VolumeBackupReport[] {
    return [...this.#byVolume.values()].sort((a, b) => a.volume.localeCompare(b.volume));
  }

  escrows(): EscrowReport[] {
    return [...this.#escrows.values()];
  }

  /** A scheduled backup made this repository's key under escrow: the wrapped form goes to the hub with the reports. */
  recordEscrow(escrow: EscrowReport): Promise<void> {
    if (this.#escrows.has(escrow.repository)) return this.#writing;
    this.#escrows.set(escrow.repository, escrow);
    return this.#persist();
  }

  recordBackup(volume: string, outcome: BackupOutcome): Promise<void> {
    return this.#set(volume, { backup: outcome });
  }

  recordVerify(volume: string, outcome: VerifyOutcome): Promise<void> {
    return this.#set(volume, { verify: outcome });
  }

  #set(volume: string, change: Partial<Pick<VolumeBackupReport, 'backup' | 'verify'>>): Promise<void> {
    const was = this.#byVolume.get(volume) ?? { volume, backup: null, verify: null };
    this.#byVolume.set(volume, { ...was, ...change });
    return this.#persist();
  }

  #persist(): Promise<void> {
    // Writes run one after another, each with the whole set as it is then.
    this.#writing = this.#writing.then(() => writeFileDurably(this.#path, `${JSON.stringify({ reports: this.list(), escrows: this.escrows() })}\n`)).catch(() => {});
    this.emit('change');
    return this.#writing;
  }
}
