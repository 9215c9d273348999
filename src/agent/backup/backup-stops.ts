/**
 * Containers stopped for a backup are started again — always. Before anything is stopped, a
 * marker listing the containers about to be stopped is written durably (temp, fsync, rename,
 * fsync dir) to STATE/backup-stops/JOB.json; they are started in a `finally`, and the marker is
 * removed only once every one of them runs again. An agent killed midway finds the marker on
 * its next start (restartStopped, before it serves anything) and starts them then.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { TEMP_SUFFIX, writeFileDurably } from '../../lib/write-file-durably.ts';
import type { StackEngine } from '../stacks/stack-engine.ts';

export const STOPS_DIR = 'backup-stops';
export const STOP_LABEL = 'dockfleet.backup.stop';

const marker = z.strictObject({ v: z.literal(1), job: z.string(), volume: z.string(), containers: z.array(z.string()), at: z.number() });

export class BackupStops {
  readonly #dir: string;
  readonly #engine: StackEngine;
  readonly #log: Logger;

  constructor(stateDir: string, engine: StackEngine, log: Logger) {
    this.#dir = join(stateDir, STOPS_DIR);
    this.#engine = engine;
    this.#log = log;
  }

  /**
   * Runs `before` (the pre commands, while everything still runs), stops `containers` (ids of
   * running containers), runs `work`, and starts them again whatever happens. The marker is on
   * disk before the first stop.
   */
  async around<T>(job: string, volume: string, containers: readonly string[], before: () => Promise<void>, work: () => Promise<T>, say: (line: string) => void): Promise<T> {
    if (containers.length === 0) {
      await before();
      return work();
    }
    const path = join(this.#dir, `${job}.json`);
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    await writeFileDurably(path, `${JSON.stringify({ v: 1, job, volume, containers: [...containers], at: Date.now() })}\n`);
    try {
      await before();
      for (const id of containers) {
        say(`stopping container ${id.slice(0, 12)} (${STOP_LABEL}=true) for the backup`);
        await this.#engine.must('POST', `/containers/${encodeURIComponent(id)}/stop?t=30`, undefined, 60_000);
      }
      return await work();
    } finally {
      const failed = await this.#startAll(containers);
      for (const id of containers) if (!failed.includes(id)) say(`started container ${id.slice(0, 12)} again`);
      if (failed.length === 0) await rm(path, { force: true });
      else say(`could not start ${failed.map((id) => id.slice(0, 12)).join(', ')} again yet; the agent tries again on its next start`);
    }
  }

  /** On agent start: starts every container a marker lists (a backup cut short), then drops the marker. */
  async restartStopped(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.#dir);
    } catch {
      return 0;
    }
    let started = 0;
    for (const name of names) {
      const path = join(this.#dir, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        await rm(path, { force: true });
        continue;
      }
      const parsed = parseJsonLine(await readFile(path, 'utf8'));
      const record = parsed.ok ? marker.safeParse(parsed.value) : null;
      if (!record?.success) {
        this.#log.error({ file: path }, 'backup stop marker damaged; left in place for a person to read');
        continue;
      }
      const failed = await this.#startAll(record.data.containers);
      started += record.data.containers.length - failed.length;
      this.#log.warn({ job: record.data.job, volume: record.data.volume, containers: record.data.containers, failed }, 'containers stopped for a backup that was cut short are started again');
      if (failed.length === 0) await rm(path, { force: true });
    }
    return started;
  }

  /** Starts each (a container already running answers 304); returns those that would not start. */
  async #startAll(containers: readonly string[]): Promise<string[]> {
    const failed: string[] = [];
    for (const id of containers) {
      try {
        const answer = await this.#engine.call('POST', `/containers/${encodeURIComponent(id)}/start`);
        // Gone since (removed by someone): nothing to start.
        if (answer.status >= 300 && answer.status !== 304 && answer.status !== 404) failed.push(id);
      } catch (err) {
        this.#log.warn({ err, container: id }, 'container stopped for a backup could not be started');
        failed.push(id);
      }
    }
    return failed;
  }
}
