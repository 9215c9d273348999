/**
 * The hub's durable record of agent upgrade rollouts (the agent-upgrade-rollouts migration's
 * tables): the rollout, and each node's step with the agent-upgrade job that shows it in the
 * jobs list. Written at every step change, read back when the hub starts to resume a rollout.
 */
import type Database from 'better-sqlite3';
import type { RolloutView } from '../../protocol/releases.ts';
import { StatementCache } from '../../store/sqlite/statement-cache.ts';

type NodeStep = RolloutView['nodes'][number];

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

interface RolloutRow {
  id: string;
  to_version: string;
  parallel: number;
  state: RolloutView['state'];
  created_by: string;
  created_at: number;
  finished_at: number | null;
}

interface StepRow {
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

const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));
const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());

export class SqliteAgentUpgradeStore implements AgentUpgradeStore {
  readonly #db: Database.Database;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#sql = new StatementCache(db);
  }

  async insertRollout({ view, jobIds, createdBy }: StoredRollout): Promise<void> {
    this.#db.transaction(() => {
      this.#sql
        .get('INSERT INTO agent_upgrade_rollouts (id, to_version, parallel, state, created_by, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(view.id, view.to, view.parallel, view.state, createdBy, ms(view.createdAt), ms(view.finishedAt));
      const insert = this.#sql.get(`INSERT INTO agent_upgrade_nodes (rollout_id, position, node, wave, state, from_version, reason, started_at, finished_at, job_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
      for (const [i, n] of view.nodes.entries()) {
        insert.run(view.id, i, n.node, n.wave, n.state, n.from, n.reason, ms(n.startedAt), ms(n.finishedAt), jobIds[i] ?? null);
      }
    })();
  }

  async saveStep(rolloutId: string, position: number, n: NodeStep): Promise<void> {
    this.#sql
      .get('UPDATE agent_upgrade_nodes SET state = ?, from_version = ?, reason = ?, started_at = ?, finished_at = ? WHERE rollout_id = ? AND position = ?')
      .run(n.state, n.from, n.reason, ms(n.startedAt), ms(n.finishedAt), rolloutId, position);
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
    });
  }
}
