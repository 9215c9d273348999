/**
 * The hub replicas this agent may dial (issue 17), kept in --state as replicas.json so a
 * restarted agent still knows them. The hub hands the list over at each handshake, pushes it
 * when it changes, and a draining replica sends it with its "move". The enrollment URL (or
 * --hub) always stays first; the rest follow in the hub's order. Dialling sticks to the replica
 * the agent is on and moves to the next one in turn only when a dial fails or a replica drains.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { replicaListSchema } from '../protocol/handshake.ts';
import { writeFileDurably } from '../lib/write-file-durably.ts';
import type { Logger } from '../lib/logger.ts';

const REPLICAS_FILE = 'replicas.json';
const replicasFile = z.object({ v: z.literal(1), replicas: replicaListSchema });

/** Same replica whatever the spelling (default port, trailing slash). */
function key(url: string): string {
  return new URL(url).origin;
}

export class ReplicaList {
  readonly #path: string | null;
  readonly #first: URL;
  readonly #log: Logger;
  #learned: string[];
  #current = 0;
  #saving: Promise<void> = Promise.resolve();

  private constructor(path: string | null, first: URL, learned: string[], log: Logger) {
    this.#path = path;
    this.#first = first;
    this.#learned = learned;
    this.#log = log;
  }

  /** The list kept in `stateDir` (none yet: the first URL alone); a damaged file counts as none. */
  static async open(stateDir: string | null, first: URL, log: Logger): Promise<ReplicaList> {
    let learned: string[] = [];
    if (stateDir) {
      const path = join(stateDir, REPLICAS_FILE);
      try {
        const parsed = replicasFile.safeParse(JSON.parse(await readFile(path, 'utf8')));
        if (parsed.success) learned = parsed.data.replicas;
        else log.warn({ path }, 'ignored a malformed replica list; dialling the enrollment hub');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ path, err }, 'could not read the replica list; dialling the enrollment hub');
      }
    }
    return new ReplicaList(stateDir ? join(stateDir, REPLICAS_FILE) : null, first, learned, log);
  }

  /** Every URL in dial order: the first URL, then the learned ones not already in it. */
  urls(): URL[] {
    const seen = new Set<string>([key(this.#first.href)]);
    const out = [this.#first];
    for (const u of this.#learned) {
      const k = key(u);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(new URL(u));
    }
    return out;
  }

  /** The replica to dial now. */
  current(): URL {
    const all = this.urls();
    return all[this.#current % all.length] as URL;
  }

  /** A dial failed (or the replica asked us to leave): the next one in turn. */
  advance(): URL {
    this.#current = (this.#current + 1) % this.urls().length;
    return this.current();
  }

  /** Moves on to a replica other than `away` (a draining one), preferring the hub's order. */
  moveAwayFrom(away: URL): URL {
    const all = this.urls();
    if (all.length > 1 && key(this.current().href) === key(away.href)) this.advance();
    return this.current();
  }

  /** Takes the hub's list; writes it durably when it changed. Keeps dialling the same replica. */
  async learn(replicas: readonly string[]): Promise<void> {
    const here = key(this.current().href);
    if (replicas.length === this.#learned.length && replicas.every((u, i) => u === this.#learned[i])) return;
    this.#learned = [...replicas];
    const at = this.urls().findIndex((u) => key(u.href) === here);
    this.#current = Math.max(at, 0);
    const record = `${JSON.stringify({ v: 1, replicas: this.#learned }, null, 2)}\n`;
    const path = this.#path;
    if (!path) return;
    // One write at a time, the last one winning: a list that changes twice quickly ends as the second.
    this.#saving = this.#saving.then(() => writeFileDurably(path, record).catch((err: unknown) => this.#log.warn({ err }, 'could not keep the replica list in the state dir')));
    await this.#saving;
  }
}
