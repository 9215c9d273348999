/**
 * The stacks tables' rows as both engines return them (SQLite's INTEGER and PostgreSQL's BIGINT
 * both arrive as numbers), the records they map to, and a record's column values in the order
 * the stores' INSERT statements list the columns.
 */
import type { RevisionRecord, RolloutPatch, RolloutRecord, StackNodeRecord, StackRecord } from '../stack-store.ts';

export interface RevisionRow {
  stack: string;
  revision: number;
  compose: string;
  env_json: string;
  secret_names_json: string;
  sealed_secrets: string;
  file_names_json: string;
  target_json: string;
  target_spec_json: string;
  parallel: number;
  created_by: string;
  created_at: number;
}
export interface RolloutRow {
  id: string;
  stack: string;
  kind: string;
  revision: number;
  nodes_json: string;
  parallel: number;
  wave: number;
  state: string;
  stopped_at_node: string | null;
  error: string | null;
  job_ids_json: string;
  idempotency_key: string;
  created_by: string;
  created_at: number;
  finished_at: number | null;
}
export interface StackRow {
  name: string;
  created_at: number;
  current_revision: number;
  removed_at: number | null;
}
export interface StackNodeRow {
  stack: string;
  node: string;
  revision: number;
  state: string;
  drift_json: string;
  updated_at: number;
}

export const stackFrom = (r: StackRow): StackRecord => ({ name: r.name, createdAt: r.created_at, currentRevision: r.current_revision, removedAt: r.removed_at });
export const revisionFrom = (r: RevisionRow): RevisionRecord => ({
  stack: r.stack,
  revision: r.revision,
  compose: r.compose,
  env: JSON.parse(r.env_json),
  secretNames: JSON.parse(r.secret_names_json),
  sealedSecrets: r.sealed_secrets,
  fileNames: JSON.parse(r.file_names_json),
  target: JSON.parse(r.target_json),
  targetSpec: JSON.parse(r.target_spec_json),
  parallel: r.parallel,
  createdBy: r.created_by,
  createdAt: r.created_at,
});
export const rolloutFrom = (r: RolloutRow): RolloutRecord => ({
  id: r.id,
  stack: r.stack,
  kind: r.kind as RolloutRecord['kind'],
  revision: r.revision,
  nodes: JSON.parse(r.nodes_json),
  parallel: r.parallel,
  wave: r.wave,
  state: r.state as RolloutRecord['state'],
  stoppedAtNode: r.stopped_at_node,
  error: r.error,
  jobIds: JSON.parse(r.job_ids_json),
  idempotencyKey: r.idempotency_key,
  createdBy: r.created_by,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});
export const stackNodeFrom = (r: StackNodeRow): StackNodeRecord => ({
  stack: r.stack,
  node: r.node,
  revision: r.revision,
  state: r.state as StackNodeRecord['state'],
  drift: JSON.parse(r.drift_json),
  updatedAt: r.updated_at,
});

/** stack_revisions' columns, in the INSERT's order: stack, revision, compose, env_json, secret_names_json,
 * sealed_secrets, file_names_json, target_json, target_spec_json, parallel, created_by, created_at. */
export const revisionValues = (rev: RevisionRecord): unknown[] => [
  rev.stack,
  rev.revision,
  rev.compose,
  JSON.stringify(rev.env),
  JSON.stringify(rev.secretNames),
  rev.sealedSecrets,
  JSON.stringify(rev.fileNames),
  JSON.stringify(rev.target),
  JSON.stringify(rev.targetSpec),
  rev.parallel,
  rev.createdBy,
  rev.createdAt,
];

/** stack_rollouts' columns, in the INSERT's order: id, stack, kind, revision, nodes_json, parallel, wave, state,
 * stopped_at_node, error, job_ids_json, idempotency_key, created_by, created_at, finished_at. */
export const rolloutValues = (r: RolloutRecord): unknown[] => [
  r.id,
  r.stack,
  r.kind,
  r.revision,
  JSON.stringify(r.nodes),
  r.parallel,
  r.wave,
  r.state,
  r.stoppedAtNode,
  r.error,
  JSON.stringify(r.jobIds),
  r.idempotencyKey,
  r.createdBy,
  r.createdAt,
  r.finishedAt,
];

/** stack_nodes' columns, in the upsert's order: stack, node, revision, state, drift_json, updated_at. */
export const stackNodeValues = (r: StackNodeRecord): unknown[] => [r.stack, r.node, r.revision, r.state, JSON.stringify(r.drift), r.updatedAt];

const ROLLOUT_PATCH_COLUMNS: Record<keyof RolloutPatch, string> = {
  wave: 'wave',
  state: 'state',
  stoppedAtNode: 'stopped_at_node',
  error: 'error',
  jobIds: 'job_ids_json',
  finishedAt: 'finished_at',
};

/** The columns a rollout patch sets (those it gives, in a fixed order) and their values; none: nothing to update. */
export function rolloutPatchColumns(patch: RolloutPatch): { columns: string[]; values: unknown[] } {
  const keys = (Object.keys(patch) as Array<keyof RolloutPatch>).filter((k) => patch[k] !== undefined).sort();
  return {
    columns: keys.map((k) => ROLLOUT_PATCH_COLUMNS[k]),
    values: keys.map((k) => (k === 'jobIds' ? JSON.stringify(patch.jobIds) : patch[k])),
  };
}
