/**
 * The hub's durable record of agent upgrade rollouts (the agent-upgrade-rollouts migration's
 * tables): the rollout, and each node's step with the agent-upgrade job that shows it in the
 * jobs list. Written at every step change, read back when the hub starts to resume a rollout.
 */
import type Database from 'better-sqlite3';
import type { RolloutView } from '../../protocol/releases.ts';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';
import { type NodeStep, type RolloutRow, rolloutValues, type StepRow, stepChangeValues, stepValues, storedRolloutFrom, ms } from './upgrade-rows.ts';

export interface StoredRollout {
  view: RolloutView;
  /** The agent-upgrade job of each node (same order as view.nodes). */
  jobIds: string[];
  createdBy: string;
}

export interface AgentUpgradeStore {
  insertRollout(rollout: StoredRollout): Promise<void>;
  saveStep(rolloutId: string, position: number, step: NodeStep): Promise<void>;
  finishRollout(id: string, state: 'succeeded' | 'failed', finishedAt: string): Promise<void>;
  /** The newest `limit` rollouts (and every running one), oldest first. */
  recent(limit: number): Promise<StoredRollout[]>;
}

export class SqliteAgentUpgradeStore implements AgentUpgradeStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  async insertRollout(rollout: StoredRollout): Promise<void> {
    this.#db.transaction(() => {
      this.#sql.get('INSERT INTO agent_upgrade_rollouts (id, to_version, parallel, state, created_by, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...rolloutValues(rollout));
      const insert = this.#sql.get(`INSERT INTO agent_upgrade_nodes (rollout_id, position, node, wave, state, from_version, reason, started_at, finished_at, job_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
      for (const [i, n] of rollout.view.nodes.entries()) insert.run(...stepValues(rollout.view.id, i, n, rollout.jobIds[i] ?? null));
    })();
  }

  async saveStep(rolloutId: string, position: number, n: NodeStep): Promise<void> {
    this.#sql
      .get('UPDATE agent_upgrade_nodes SET state = ?, from_version = ?, reason = ?, started_at = ?, finished_at = ? WHERE rollout_id = ? AND position = ?')
      .run(...stepChangeValues(n), rolloutId, position);
  }

  async finishRollout(id: string, state: 'succeeded' | 'failed', finishedAt: string): Promise<void> {
    this.#sql.get("UPDATE agent_upgrade_rollouts SET state = ?, finished_at = ? WHERE id = ? AND state = 'running'").run(state, ms(finishedAt), id);
  }

  async recent(limit: number): Promise<StoredRollout[]> {
    const rows = this.#sql
      .get(`SELECT * FROM agent_upgrade_rollouts WHERE state = 'running' OR id IN (SELECT id FROM agent_upgrade_rollouts ORDER BY created_at DESC LIMIT ?)
      ORDER BY created_at, rowid`)
      .all(limit) as RolloutRow[];
    const steps = this.#sql.get('SELECT * FROM agent_upgrade_nodes WHERE rollout_id = ? ORDER BY position');
    return rows.map((r) => {
      const nodes = steps.all(r.id) as StepRow[];
      return storedRolloutFrom(r, nodes);
    });
  }
}
