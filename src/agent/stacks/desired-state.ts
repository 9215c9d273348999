/**
 * What the agent holds for each stack in its own state dir, so it knows it with the hub
 * unreachable and after a crash: STATE/stacks/NAME/
 *   desired.json   the revision it was last told to hold, the config-hash and image per
 *                  service, and the stack's state (secret values are never in it: the project
 *                  names secret variables only, and hashes see a digest of their values)
 *   snapshot.json  the revision before the last deploy, with its resolved image IDs
 *   journal.json   an apply in progress: what it retired and created, the volume snapshots it
 *                  took and the containers it paused, for a resume
 * Each file is written whole to a temporary name, synced, then renamed over the old one.
 */
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { STACK_NAME, STACK_NODE_STATES, stackRevision } from '../../protocol/stacks.ts';
import { DockfleetError } from '../../protocol/errors.ts';

const serviceRecord = z.strictObject({ hash: z.string(), imageId: z.string() });

export const desiredFile = z.strictObject({
  v: z.literal(1),
  revision: stackRevision,
  services: z.record(z.string(), serviceRecord),
  state: z.enum(STACK_NODE_STATES),
  updatedAt: z.number(),
});
export type DesiredFile = z.infer<typeof desiredFile>;

export const snapshotFile = z.strictObject({
  v: z.literal(1),
  revision: stackRevision,
  /** service → image ID its container ran. */
  images: z.record(z.string(), z.string()),
  takenAt: z.number(),
});
export type SnapshotFile = z.infer<typeof snapshotFile>;

export const journalFile = z.strictObject({
  v: z.literal(1),
  jobId: z.string(),
  revision: z.number().int(),
  /** Containers of the old revision set aside: restored (renamed back, started) on a rollback. */
  retired: z.array(z.strictObject({ id: z.string(), name: z.string(), renamedTo: z.string().nullable(), wasRunning: z.boolean() })),
  /** Names of containers, networks and volumes this apply made (written before each create). */
  created: z.strictObject({ containers: z.array(z.string()), networks: z.array(z.string()), volumes: z.array(z.string()) }),
  /** Finished volume snapshots: copied back on a rollback, before the old containers start. */
  volumes: z.array(z.strictObject({ volume: z.string(), snapshot: z.string(), image: z.string() })).default([]),
  /** Containers paused for a snapshot copy: unpaused on a rollback if a crash left them so. */
  paused: z.array(z.string()).default([]),
});
export type JournalFile = z.infer<typeof journalFile>;

type Kind = 'desired' | 'snapshot' | 'journal';
const SCHEMAS = { desired: desiredFile, snapshot: snapshotFile, journal: journalFile } as const;

export class StackStateDir {
  readonly #root: string;

  constructor(stateDir: string) {
    this.#root = join(stateDir, 'stacks');
  }

  dir(stack: string): string {
    if (!STACK_NAME.test(stack)) throw new DockfleetError('bad_request', `not a stack name: ${JSON.stringify(stack.slice(0, 80))}`);
    return join(this.#root, stack);
  }

  async stacks(): Promise<string[]> {
    try {
      return (await readdir(this.#root)).filter((name) => STACK_NAME.test(name)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  read(stack: string, kind: 'desired'): Promise<DesiredFile | null>;
  read(stack: string, kind: 'snapshot'): Promise<SnapshotFile | null>;
  read(stack: string, kind: 'journal'): Promise<JournalFile | null>;
  async read(stack: string, kind: Kind): Promise<unknown> {
    const path = join(this.dir(stack), `${kind}.json`);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new DockfleetError('state_corrupt', `agent state file ${path} is not complete JSON`);
    }
    const parsed = SCHEMAS[kind].safeParse(raw);
    if (!parsed.success) throw new DockfleetError('state_corrupt', `agent state file ${path} does not match its schema`);
    return parsed.data;
  }

  async write(stack: string, kind: Kind, value: DesiredFile | SnapshotFile | JournalFile): Promise<void> {
    const dir = this.dir(stack);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${kind}.json`);
    const tmp = `${path}.tmp`;
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(value));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  }

  async remove(stack: string, kind: Kind): Promise<void> {
    await rm(join(this.dir(stack), `${kind}.json`), { force: true });
  }
}
