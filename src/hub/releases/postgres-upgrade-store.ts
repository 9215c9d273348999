/**
 * AgentUpgradeStore on the hub's PostgreSQL database (the agent-upgrade-rollouts migration's
 * tables): a rollout and its per-node steps, written at every step change, read back when a hub
 * starts to resume a rollout. Rollouts created in the same millisecond come back by id (SQLite's
 * store orders those by insertion, which PostgreSQL does not keep).
 */
import type { PgDb } from '../../store/postgres/db.ts';
import { type RolloutRow, rolloutValues, type StepRow, stepChangeValues, stepValues, storedRolloutFrom, ms, type NodeStep } from './upgrade-rows.ts';
import type { AgentUpgradeStore, StoredRollout } from './upgrade-store.ts';

export class PostgresAgentUpgradeStore implements AgentUpgradeStore {
  readonly #db: PgDb;

  constructor(db: PgDb) {
    this.#db = db;
  }

  async insertRollout(rollout: StoredRollout): Promise<void> {
    await this.#db.tx(async (q) => {
      await q.query('INSERT INTO agent_upgrade_rollouts (id, to_version, parallel, state, created_by, created_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', rolloutValues(rollout));
      for (const [i, n] of rollout.view.nodes.entries()) {
        await q.query(
          `INSERT INTO agent_upgrade_nodes (rollout_id, position, node, wave, state, from_version, reason, started_at, finished_at, job_id)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          stepValues(rollout.view.id, i, n, rollout.jobIds[i] ?? null),
        );
      }
    });
  }

  async saveStep(rolloutId: string, position: number, n: NodeStep): Promise<void> {
    await this.#db.query('UPDATE agent_upgrade_nodes SET state = $1, from_version = $2, reason = $3, started_at = $4, finished_at = $5 WHERE rollout_id = $6 AND position = $7', [
      ...stepChangeValues(n),
      rolloutId,
      position,
    ]);
  }

  async finishRollout(id: string, state: 'succeeded' | 'failed', finishedAt: string): Promise<void> {
    await this.#db.query("UPDATE agent_upgrade_rollouts SET state = $1, finished_at = $2 WHERE id = $3 AND state = 'running'", [state, ms(finishedAt), id]);
  }

  async recent(limit: number): Promise<StoredRollout[]> {
    // One snapshot for both reads, so a step written meanwhile never pairs with an older rollout row.
    const [rollouts, steps] = await this.#db.tx(async (q) => {
      await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const { rows } = await q.query<RolloutRow>(
        `SELECT * FROM agent_upgrade_rollouts WHERE state = 'running' OR id IN (SELECT id FROM agent_upgrade_rollouts ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $1)
        ORDER BY created_at, id COLLATE "C"`,
        [limit],
      );
      const ids = rows.map((r) => r.id);
      const steps = (await q.query<StepRow>('SELECT * FROM agent_upgrade_nodes WHERE rollout_id = ANY($1::text[]) ORDER BY rollout_id, position', [ids])).rows;
      return [rows, steps] as const;
    });
    const byRollout = new Map<string, StepRow[]>();
    for (const s of steps) {
      const list = byRollout.get(s.rollout_id);
      if (list) list.push(s);
      else byRollout.set(s.rollout_id, [s]);
    }
    return rollouts.map((r) => {
      const nodes = byRollout.get(r.id) ?? [];
      return storedRolloutFrom(r, nodes);
    });
  }
}
