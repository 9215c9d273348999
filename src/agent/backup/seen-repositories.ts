/**
 * The repositories this host has opened or made, by label (`<state>/backup-repositories-seen.json`,
 * written durably). A repository this host knew that is gone now — most often a disk that is not
 * mounted, whose empty mountpoint restic would happily fill with a brand-new repository — is
 * refused rather than made again: the next backup would otherwise report success into the wrong
 * disk, and the snapshots on the real one would look lost.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurably } from '../../lib/write-file-durably.ts';

export const SEEN_FILE = 'backup-repositories-seen.json';

export class SeenRepositories {
  readonly #path: string;
  #seen: Set<string> | null = null;

  constructor(stateDir: string) {
    this.#path = join(stateDir, SEEN_FILE);
  }

  async has(label: string): Promise<boolean> {
    return (await this.#load()).has(label);
  }

  /** Records `label` (once; the file is rewritten only when it is new). */
  async add(label: string): Promise<void> {
    const seen = await this.#load();
    if (seen.has(label)) return;
    seen.add(label);
    await writeFileDurably(this.#path, `${JSON.stringify([...seen].sort())}\n`, 0o600);
  }

  async #load(): Promise<Set<string>> {
    if (this.#seen) return this.#seen;
    let list: unknown = [];
    try {
      list = JSON.parse(await readFile(this.#path, 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#seen = new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : []);
    return this.#seen;
  }
}
