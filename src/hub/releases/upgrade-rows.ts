/**
 * The agent upgrade tables' rows as both engines return them (SQLite's INTEGER and PostgreSQL's
 * BIGINT both arrive as numbers), the stored rollout they map to, and the column values the
 * stores write. Times are ISO strings in the view and milliseconds in the tables.
 */
import type { RolloutView } from '../../protocol/releases.ts';
import type { StoredRollout } from './upgrade-store.ts';

export type NodeStep = RolloutView['nodes'][number];

export interface RolloutRow {
  id: string;
  to_version: string;
  parallel: number;
  state: RolloutView['state'];
  created_by: string;
  created_at: number;
  finished_at: number | null;
}

export interface StepRow {
  rollout_id: string;
  position: number;
  node: string;
  wave: number;
  state: NodeStep['state'];
  from_version: string | null;
  reason: string | null;
  started_at: number | null;
  finished_at: number | null;
  job_id: string | null;
}

export const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));
const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());

/** A rollout row and its steps (in position order) as the stored rollout. */
export function storedRolloutFrom(r: RolloutRow, nodes: readonly StepRow[]): StoredRollout {
  return {
    view: {
      id: r.id,
      to: r.to_version,
      parallel: r.parallel,
      state: r.state,
      createdAt: iso(r.created_at)!,
      finishedAt: iso(r.finished_at),
      nodes: nodes.map((n) => ({
        node: n.node,
        wave: n.wave,
        state: n.state,
        from: n.from_version,
        reason: n.reason,
        startedAt: iso(n.started_at),
        finishedAt: iso(n.finished_at),
      })),
    },
    jobIds: nodes.map((n) => n.job_id ?? ''),
    createdBy: r.created_by,
  };
}

/** agent_upgrade_rollouts' columns, in the INSERT's order: id, to_version, parallel, state, created_by, created_at, finished_at. */
export const rolloutValues = ({ view, createdBy }: StoredRollout): unknown[] => [view.id, view.to, view.parallel, view.state, createdBy, ms(view.createdAt), ms(view.finishedAt)];

/** agent_upgrade_nodes' columns, in the INSERT's order: rollout_id, position, node, wave, state, from_version,
 * reason, started_at, finished_at, job_id. */
export const stepValues = (rolloutId: string, position: number, n: NodeStep, jobId: string | null): unknown[] => [
  rolloutId,
  position,
  n.node,
  n.wave,
  n.state,
  n.from,
  n.reason,
  ms(n.startedAt),
  ms(n.finishedAt),
  jobId,
];

/** What saving a step sets, in the UPDATE's order: state, from_version, reason, started_at, finished_at. */
export const stepChangeValues = (n: NodeStep): unknown[] => [n.state, n.from, n.reason, ms(n.startedAt), ms(n.finishedAt)];
