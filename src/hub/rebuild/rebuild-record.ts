/**
 * What the hub records of a host rebuild (issue 14, item 6): the plan it made when a
 * replacement host took over a node, and how far each step got. Stored whole as JSON after
 * every step, so a hub restarted midway picks the sequence up where it stood.
 *
 *   restoring  volume-restore jobs, one volume at a time (latest snapshot, same volume name)
 *   deploying  the node's stacks, their current revisions, through the rollout machinery
 *   done       every volume restored and every stack deployed
 *   failed     a step failed: `error` says which and why; later steps were not run
 *
 * On a host whose policy requires signed intent (issue 13) a step's job is filed for signing and
 * the step is `awaiting-signature` until the operator signs it (`dockfleet node rebuild NAME
 * --sign`); `waiting` says so meanwhile. The rebuild waits; it does not fail for it.
 */
import { z } from 'zod';
import type { BackupRepository } from '../../protocol/volume-backup.ts';

/** `POST /api/v1/nodes/NAME/rebuild`: retry a failed rebuild, optionally with a corrected recovery code or password (sealed, never shown). */
export const retryRebuildBody = z.strictObject({
  recoveryCode: z.string().min(8).max(200).optional(),
  resticPassword: z.string().min(1).max(8_192).optional(),
});

export const REBUILD_STATES = ['restoring', 'deploying', 'done', 'failed'] as const;
export type RebuildState = (typeof REBUILD_STATES)[number];
export type StepState = 'pending' | 'awaiting-signature' | 'running' | 'succeeded' | 'failed';

export interface VolumeStep {
  volume: string;
  /** Where its backups went (null: the host's own default), from the hub's record. */
  repository: BackupRepository | null;
  /** The repository as the old host named it (`hub:volumes`, a path, a URL without credentials). */
  repositoryLabel: string | null;
  /** Whether the hub holds an escrowed key for it (sent with the recovery code, when given). */
  escrowed: boolean;
  job: string | null;
  state: StepState;
  snapshot: string | null;
  error: string | null;
}

export interface StackStep {
  stack: string;
  revision: number;
  rollout: string | null;
  state: StepState;
  error: string | null;
}

export interface RebuildRecord {
  id: string;
  node: string;
  state: RebuildState;
  /** When the replacement enrolled (the rebuild's start). */
  startedAt: number;
  finishedAt: number | null;
  /** Key custody as far as the hub can tell, and what that means for the restores. */
  custody: string;
  volumes: VolumeStep[];
  stacks: StackStep[];
  error: string | null;
  /** What the rebuild waits for now, when it waits on someone (the operator's signature); absent or null otherwise. */
  waiting?: string | null;
}

/** The REST and `nodes --json` form: times as ISO strings. */
export function rebuildView(r: RebuildRecord): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: r.id,
    node: r.node,
    state: r.state,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    custody: r.custody,
    volumes: r.volumes.map((v) => ({ volume: v.volume, repository: v.repositoryLabel, escrowed: v.escrowed, job: v.job, state: v.state, snapshot: v.snapshot, error: v.error })),
    stacks: r.stacks,
    error: r.error,
    waiting: r.waiting ?? null,
  };
}
