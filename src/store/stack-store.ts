/**
 * Stacks as durable intent (hub/stacks/): node labels, stacks, their revisions and each
 * node's reported state, and the rollouts that carry a revision to its nodes in waves.
 * Filled in by each database folder (sqlite/sqlite-stack-store.ts). Methods reject with
 * `storage_full` when the storage cannot take a write. Secret values never reach this
 * interface in plaintext: a revision holds them sealed by the hub's secret box.
 */
import type { DriftItem, StackNodeState, StackRevision } from '../protocol/stacks.ts';
import type { StackTarget } from '../protocol/stack-api.ts';

export interface NodeLabelRow {
  node: string;
  key: string;
  value: string;
}

export interface StackRecord {
  name: string;
  createdAt: number;
  /** The revision every node should be on (0 before the first deploy). */
  currentRevision: number;
  removedAt: number | null;
}

export interface RevisionRecord {
  stack: string;
  revision: number;
  compose: string;
  env: Record<string, string>;
  /** Names only: which variables and files are secret. */
  secretNames: { env: string[]; files: string[] };
  /** JSON of {secretEnv, secretFiles, files}, sealed by the secret box. */
  sealedSecrets: string;
  fileNames: string[];
  /** What the agents receive: no secret values inside. */
  target: StackRevision;
  targetSpec: StackTarget;
  parallel: number;
  createdBy: string;
  createdAt: number;
}

export interface StackNodeRecord {
  stack: string;
  node: string;
  revision: number;
  state: StackNodeState;
  drift: DriftItem[];
  updatedAt: number;
}

export type RolloutKind = 'deploy' | 'rollback' | 'remove';
export type RolloutState = 'running' | 'succeeded' | 'failed';

export interface RolloutRecord {
  id: string;
  stack: string;
  kind: RolloutKind;
  /** The revision it carries (for remove: the revision that was current). */
  revision: number;
  /** Every node it will reach, in order; waves of `parallel`. */
  nodes: string[];
  parallel: number;
  /** The wave being waited for; equals the number of waves once every wave is through. */
  wave: number;
  state: RolloutState;
  stoppedAtNode: string | null;
  error: string | null;
  jobIds: string[];
  idempotencyKey: string;
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
}

export type RolloutPatch = Partial<Pick<RolloutRecord, 'wave' | 'state' | 'stoppedAtNode' | 'error' | 'jobIds' | 'finishedAt'>>;

export interface StackStore {
  readonly kind: 'stacks';

  listNodeLabels(): Promise<NodeLabelRow[]>;
  /** Sets (string) or removes (null) each key in one transaction. */
  setNodeLabels(node: string, changes: Record<string, string | null>): Promise<void>;

  getStack(name: string): Promise<StackRecord | null>;
  listStacks(): Promise<StackRecord[]>;
  /**
   * In one transaction: creates the stack if new (and clears a removal), numbers the next
   * revision, stores it as `build(revision)` makes it, makes it current, and stores the
   * rollout `rollout(revision)`. A rollout idempotency key already stored makes it a no-op
   * that returns the rollout stored with it (a repeated submit). Otherwise, while another
   * rollout of the stack is running, rejects with `rollout_in_progress` and stores nothing.
   */
  createRevision(
    stack: string,
    at: number,
    build: (revision: number) => RevisionRecord,
    rollout: (revision: number) => RolloutRecord,
    idempotencyKey: string,
  ): Promise<{ created: boolean; rollout: RolloutRecord }>;
  getRevision(stack: string, revision: number): Promise<RevisionRecord | null>;
  /** Newest first. */
  listRevisions(stack: string): Promise<RevisionRecord[]>;
  /** Points the stack at `revision` (or marks it removed) and stores the rollout, in one
   * transaction; an idempotency key already stored returns that rollout instead; another
   * running rollout of the stack rejects with `rollout_in_progress`. */
  startRollout(rollout: RolloutRecord, stackChange: { currentRevision?: number; removedAt?: number | null }): Promise<{ created: boolean; rollout: RolloutRecord }>;

  upsertStackNode(record: StackNodeRecord): Promise<void>;
  deleteStackNode(stack: string, node: string): Promise<void>;
  listStackNodes(stack?: string): Promise<StackNodeRecord[]>;

  getRollout(id: string): Promise<RolloutRecord | null>;
  updateRollout(id: string, patch: RolloutPatch): Promise<void>;
  listRunningRollouts(): Promise<RolloutRecord[]>;
  /** Newest first. */
  listRollouts(stack: string, limit: number): Promise<RolloutRecord[]>;
}
