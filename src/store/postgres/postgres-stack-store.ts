/**
 * StackStore on PostgreSQL (the stacks tables as the SQLite migrations make them, translated).
 * Several hub replicas may share the database: storing a rollout takes transaction-scoped
 * advisory locks on its idempotency key and its stack, so a repeated submit finds the first
 * rollout and two rollouts of one stack never run at once, whichever replica files them.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import {
  type RevisionRow,
  type RolloutRow,
  revisionFrom,
  revisionValues,
  rolloutFrom,
  rolloutPatchColumns,
  rolloutValues,
  type StackNodeRow,
  type StackRow,
  stackFrom,
  stackNodeFrom,
  stackNodeValues,
} from '../rows/stack-rows.ts';
import type { NodeLabelRow, RevisionRecord, RolloutPatch, RolloutRecord, StackNodeRecord, StackRecord, StackStore } from '../stack-store.ts';
import type { PgDb, Queryable } from './db.ts';

export class PostgresStackStore implements StackStore {
  readonly kind = 'stacks' as const;
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async listNodeLabels(): Promise<NodeLabelRow[]> {
    return (await this.#db.query<NodeLabelRow>('SELECT node, key, value FROM node_labels ORDER BY node COLLATE "C", key COLLATE "C"')).rows;
  }

  async setNodeLabels(node: string, changes: Record<string, string | null>): Promise<void> {
    await this.#db.tx(async (q) => {
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) await q.query('DELETE FROM node_labels WHERE node = $1 AND key = $2', [node, key]);
        else await q.query('INSERT INTO node_labels (node, key, value) VALUES ($1, $2, $3) ON CONFLICT (node, key) DO UPDATE SET value = excluded.value', [node, key, value]);
      }
    });
  }

  async getStack(name: string): Promise<StackRecord | null> {
    const { rows } = await this.#db.query<StackRow>('SELECT * FROM stacks WHERE name = $1', [name]);
    return rows[0] ? stackFrom(rows[0]) : null;
  }

  async listStacks(): Promise<StackRecord[]> {
    return (await this.#db.query<StackRow>('SELECT * FROM stacks ORDER BY name COLLATE "C"')).rows.map(stackFrom);
  }

  async createRevision(
    stack: string,
    at: number,
    build: (revision: number) => RevisionRecord,
    rollout: (revision: number) => RolloutRecord,
    idempotencyKey: string,
  ): Promise<{ created: boolean; rollout: RolloutRecord }> {
    return this.#db.tx(async (q) => {
      await lockRollout(q, idempotencyKey, stack);
      const existing = await rolloutByKey(q, idempotencyKey);
      if (existing) return { created: false, rollout: existing };
      await refuseWhileRunning(q, stack);
      await q.query('INSERT INTO stacks (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [stack, at]);
      const { rows } = await q.query<{ last: number }>('SELECT COALESCE(MAX(revision), 0) AS last FROM stack_revisions WHERE stack = $1', [stack]);
      const rev = build((rows[0]?.last ?? 0) + 1);
      await q.query(
        `INSERT INTO stack_revisions (stack, revision, compose, env_json, secret_names_json, sealed_secrets, file_names_json,
        target_json, target_spec_json, parallel, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
        revisionValues(rev),
      );
      await q.query('UPDATE stacks SET current_revision = $1, removed_at = NULL WHERE name = $2', [rev.revision, stack]);
      const record = rollout(rev.revision);
      await insertRollout(q, record);
      return { created: true, rollout: record };
    });
  }

  async getRevision(stack: string, revision: number): Promise<RevisionRecord | null> {
    const { rows } = await this.#db.query<RevisionRow>('SELECT * FROM stack_revisions WHERE stack = $1 AND revision = $2', [stack, revision]);
    return rows[0] ? revisionFrom(rows[0]) : null;
  }

  async listRevisions(stack: string): Promise<RevisionRecord[]> {
    return (await this.#db.query<RevisionRow>('SELECT * FROM stack_revisions WHERE stack = $1 ORDER BY revision DESC', [stack])).rows.map(revisionFrom);
  }

  async startRollout(rollout: RolloutRecord, change: { currentRevision?: number; removedAt?: number | null }): Promise<{ created: boolean; rollout: RolloutRecord }> {
    return this.#db.tx(async (q) => {
      await lockRollout(q, rollout.idempotencyKey, rollout.stack);
      const existing = await rolloutByKey(q, rollout.idempotencyKey);
      if (existing) return { created: false, rollout: existing };
      await refuseWhileRunning(q, rollout.stack);
      if (change.currentRevision !== undefined) await q.query('UPDATE stacks SET current_revision = $1 WHERE name = $2', [change.currentRevision, rollout.stack]);
      if (change.removedAt !== undefined) await q.query('UPDATE stacks SET removed_at = $1 WHERE name = $2', [change.removedAt, rollout.stack]);
      await insertRollout(q, rollout);
      return { created: true, rollout };
    });
  }

  async upsertStackNode(r: StackNodeRecord): Promise<void> {
    await this.#db.query(
      `INSERT INTO stack_nodes (stack, node, revision, state, drift_json, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
      ON CONFLICT (stack, node) DO UPDATE SET revision = excluded.revision, state = excluded.state, drift_json = excluded.drift_json,
      updated_at = excluded.updated_at`,
      stackNodeValues(r),
    );
  }

  async deleteStackNode(stack: string, node: string): Promise<void> {
    await this.#db.query('DELETE FROM stack_nodes WHERE stack = $1 AND node = $2', [stack, node]);
  }

  async listStackNodes(stack?: string): Promise<StackNodeRecord[]> {
    const { rows } =
      stack === undefined
        ? await this.#db.query<StackNodeRow>('SELECT * FROM stack_nodes ORDER BY stack COLLATE "C", node COLLATE "C"')
        : await this.#db.query<StackNodeRow>('SELECT * FROM stack_nodes WHERE stack = $1 ORDER BY node COLLATE "C"', [stack]);
    return rows.map(stackNodeFrom);
  }

  async getRollout(id: string): Promise<RolloutRecord | null> {
    const { rows } = await this.#db.query<RolloutRow>('SELECT * FROM stack_rollouts WHERE id = $1', [id]);
    return rows[0] ? rolloutFrom(rows[0]) : null;
  }

  async updateRollout(id: string, patch: RolloutPatch): Promise<void> {
    const { columns, values } = rolloutPatchColumns(patch);
    if (columns.length === 0) return;
    await this.#db.query(`UPDATE stack_rollouts SET ${columns.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE id = $${columns.length + 1}`, [...values, id]);
  }

  async listRunningRollouts(): Promise<RolloutRecord[]> {
    return (await this.#db.query<RolloutRow>(`SELECT * FROM stack_rollouts WHERE state = 'running' ORDER BY created_at, id COLLATE "C"`)).rows.map(rolloutFrom);
  }

  async listRollouts(stack: string, limit: number): Promise<RolloutRecord[]> {
    // SQLite breaks a tie in created_at by rowid (newest insert first); PostgreSQL has no such
    // order, so a tie goes by id.
    const { rows } = await this.#db.query<RolloutRow>('SELECT * FROM stack_rollouts WHERE stack = $1 ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2', [stack, limit]);
    return rows.map(rolloutFrom);
  }
}

/** Serialises, until the transaction ends, every replica's attempt to store a rollout with this
 * key or for this stack (key first, then stack, always in that order). */
async function lockRollout(q: Queryable, idempotencyKey: string, stack: string): Promise<void> {
  await q.query("SELECT pg_advisory_xact_lock(hashtextextended('dockfleet rollout key ' || $1, 0))", [idempotencyKey]);
  await q.query("SELECT pg_advisory_xact_lock(hashtextextended('dockfleet stack ' || $1, 0))", [stack]);
}

/** One rollout at a time per stack; checked inside the transaction that would store another. */
async function refuseWhileRunning(q: Queryable, stack: string): Promise<void> {
  const { rows } = await q.query<{ id: string; kind: string }>("SELECT id, kind FROM stack_rollouts WHERE stack = $1 AND state = 'running' LIMIT 1", [stack]);
  const running = rows[0];
  if (running) throw new DockfleetError('rollout_in_progress', `stack ${stack} has a ${running.kind} running (rollout ${running.id}); wait for it to end`);
}

async function rolloutByKey(q: Queryable, key: string): Promise<RolloutRecord | null> {
  const { rows } = await q.query<RolloutRow>('SELECT * FROM stack_rollouts WHERE idempotency_key = $1', [key]);
  return rows[0] ? rolloutFrom(rows[0]) : null;
}

async function insertRollout(q: Queryable, r: RolloutRecord): Promise<void> {
  await q.query(
    `INSERT INTO stack_rollouts (id, stack, kind, revision, nodes_json, parallel, wave, state, stopped_at_node, error,
    job_ids_json, idempotency_key, created_by, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    rolloutValues(r),
  );
}
