/** StackStore on the hub's SQLite database (tables from the stacks migration). */
import type Database from 'better-sqlite3';
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
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

const INSERT_ROLLOUT = `INSERT INTO stack_rollouts (id, stack, kind, revision, nodes_json, parallel, wave, state, stopped_at_node, error,
  job_ids_json, idempotency_key, created_by, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export class SqliteStackStore implements StackStore {
  readonly kind = 'stacks' as const;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }

  async listNodeLabels(): Promise<NodeLabelRow[]> {
    return this.#sql.get('SELECT node, key, value FROM node_labels ORDER BY node, key').all() as NodeLabelRow[];
  }

  async setNodeLabels(node: string, changes: Record<string, string | null>): Promise<void> {
    this.#sql.db.transaction(() => {
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) this.#sql.get('DELETE FROM node_labels WHERE node = ? AND key = ?').run(node, key);
        else this.#sql.get('INSERT INTO node_labels (node, key, value) VALUES (?, ?, ?) ON CONFLICT (node, key) DO UPDATE SET value = excluded.value').run(node, key, value);
      }
    })();
  }

  async getStack(name: string): Promise<StackRecord | null> {
    const row = this.#sql.get('SELECT * FROM stacks WHERE name = ?').get(name) as StackRow | undefined;
    return row ? stackFrom(row) : null;
  }

  async listStacks(): Promise<StackRecord[]> {
    return (this.#sql.get('SELECT * FROM stacks ORDER BY name').all() as StackRow[]).map(stackFrom);
  }

  async createRevision(
    stack: string,
    at: number,
    build: (revision: number) => RevisionRecord,
    rollout: (revision: number) => RolloutRecord,
    idempotencyKey: string,
  ): Promise<{ created: boolean; rollout: RolloutRecord }> {
    return this.#sql.db.transaction(() => {
      const existing = this.#rolloutByKey(idempotencyKey);
      if (existing) return { created: false, rollout: existing };
      this.#refuseWhileRunning(stack);
      this.#sql.get('INSERT INTO stacks (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING').run(stack, at);
      const { last } = this.#sql.get('SELECT COALESCE(MAX(revision), 0) AS last FROM stack_revisions WHERE stack = ?').get(stack) as { last: number };
      const rev = build(last + 1);
      this.#sql
        .get(`INSERT INTO stack_revisions (stack, revision, compose, env_json, secret_names_json, sealed_secrets, file_names_json,
        target_json, target_spec_json, parallel, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(...revisionValues(rev));
      this.#sql.get('UPDATE stacks SET current_revision = ?, removed_at = NULL WHERE name = ?').run(rev.revision, stack);
      const record = rollout(rev.revision);
      this.#insertRollout(record);
      return { created: true, rollout: record };
    })();
  }

  async getRevision(stack: string, revision: number): Promise<RevisionRecord | null> {
    const row = this.#sql.get('SELECT * FROM stack_revisions WHERE stack = ? AND revision = ?').get(stack, revision) as RevisionRow | undefined;
    return row ? revisionFrom(row) : null;
  }

  async listRevisions(stack: string): Promise<RevisionRecord[]> {
    return (this.#sql.get('SELECT * FROM stack_revisions WHERE stack = ? ORDER BY revision DESC').all(stack) as RevisionRow[]).map(revisionFrom);
  }

  async startRollout(rollout: RolloutRecord, change: { currentRevision?: number; removedAt?: number | null }): Promise<{ created: boolean; rollout: RolloutRecord }> {
    return this.#sql.db.transaction(() => {
      const existing = this.#rolloutByKey(rollout.idempotencyKey);
      if (existing) return { created: false, rollout: existing };
      this.#refuseWhileRunning(rollout.stack);
      if (change.currentRevision !== undefined) this.#sql.get('UPDATE stacks SET current_revision = ? WHERE name = ?').run(change.currentRevision, rollout.stack);
      if (change.removedAt !== undefined) this.#sql.get('UPDATE stacks SET removed_at = ? WHERE name = ?').run(change.removedAt, rollout.stack);
      this.#insertRollout(rollout);
      return { created: true, rollout };
    })();
  }

  async upsertStackNode(r: StackNodeRecord): Promise<void> {
    this.#sql
      .get(`INSERT INTO stack_nodes (stack, node, revision, state, drift_json, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (stack, node) DO UPDATE SET revision = excluded.revision, state = excluded.state, drift_json = excluded.drift_json,
      updated_at = excluded.updated_at`)
      .run(...stackNodeValues(r));
  }

  async deleteStackNode(stack: string, node: string): Promise<void> {
    this.#sql.get('DELETE FROM stack_nodes WHERE stack = ? AND node = ?').run(stack, node);
  }

  async listStackNodes(stack?: string): Promise<StackNodeRecord[]> {
    const rows = stack === undefined ? this.#sql.get('SELECT * FROM stack_nodes ORDER BY stack, node').all() : this.#sql.get('SELECT * FROM stack_nodes WHERE stack = ? ORDER BY node').all(stack);
    return (rows as StackNodeRow[]).map(stackNodeFrom);
  }

  async getRollout(id: string): Promise<RolloutRecord | null> {
    const row = this.#sql.get('SELECT * FROM stack_rollouts WHERE id = ?').get(id) as RolloutRow | undefined;
    return row ? rolloutFrom(row) : null;
  }

  async updateRollout(id: string, patch: RolloutPatch): Promise<void> {
    const { columns, values } = rolloutPatchColumns(patch);
    if (columns.length === 0) return;
    this.#sql.get(`UPDATE stack_rollouts SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`).run(...values, id);
  }

  async listRunningRollouts(): Promise<RolloutRecord[]> {
    return (this.#sql.get("SELECT * FROM stack_rollouts WHERE state = 'running' ORDER BY created_at").all() as RolloutRow[]).map(rolloutFrom);
  }

  async listRollouts(stack: string, limit: number): Promise<RolloutRecord[]> {
    return (this.#sql.get('SELECT * FROM stack_rollouts WHERE stack = ? ORDER BY created_at DESC, rowid DESC LIMIT ?').all(stack, limit) as RolloutRow[]).map(rolloutFrom);
  }

  /** One rollout at a time per stack; checked inside the transaction that would store another. */
  #refuseWhileRunning(stack: string): void {
    const running = this.#sql.get("SELECT id, kind FROM stack_rollouts WHERE stack = ? AND state = 'running' LIMIT 1").get(stack) as { id: string; kind: string } | undefined;
    if (running) throw new DockfleetError('rollout_in_progress', `stack ${stack} has a ${running.kind} running (rollout ${running.id}); wait for it to end`);
  }

  #rolloutByKey(key: string): RolloutRecord | null {
    const row = this.#sql.get('SELECT * FROM stack_rollouts WHERE idempotency_key = ?').get(key) as RolloutRow | undefined;
    return row ? rolloutFrom(row) : null;
  }

  #insertRollout(r: RolloutRecord): void {
    this.#sql.get(INSERT_ROLLOUT).run(...rolloutValues(r));
  }
}
translateStorageFailures(SqliteStackStore);
