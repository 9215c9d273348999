/**
 * Carries a rollout to its nodes in waves of `parallel`: files one job per node of the wave,
 * waits for all of them, and stops at the first failed node (the nodes after it are never
 * given a job, so they stay on their old revision; a signed rollout's jobs for them, filed and
 * signed up front, fail at once with the reason). Progress is stored after every wave, and
 * a hub that starts again resumes every running rollout at its stored wave: re-filing that
 * wave's jobs with the same idempotency keys returns the jobs already filed.
 */
import type { Logger } from '../../lib/logger.ts';
import type { RolloutRecord, StackStore } from '../../store/stack-store.ts';
import type { FileJobInput, StackJobView, StackJobs } from './stack-ports.ts';

export interface RolloutHooks {
  /** The job to file for one node of the rollout (target revision and its opened secrets). */
  jobFor(rollout: RolloutRecord, node: string): Promise<FileJobInput>;
  /** A job was filed (the node is now deploying). */
  filed(rollout: RolloutRecord, job: StackJobView): Promise<void>;
  /** A job is final. */
  finished(rollout: RolloutRecord, job: StackJobView): Promise<void>;
  /** The rollout stopped before `nodes` had their turn (their jobs, if filed up front, are dropped). */
  stopped(rollout: RolloutRecord, nodes: readonly string[], reason: string): Promise<void>;
}

export function waves(nodes: readonly string[], parallel: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < nodes.length; i += parallel) out.push(nodes.slice(i, i + parallel));
  return out;
}

export class RolloutRunner {
  readonly #store: StackStore;
  readonly #jobs: StackJobs;
  readonly #hooks: RolloutHooks;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #running = new Map<string, Promise<void>>();

  constructor(deps: { store: StackStore; jobs: StackJobs; hooks: RolloutHooks; log: Logger }) {
    this.#store = deps.store;
    this.#jobs = deps.jobs;
    this.#hooks = deps.hooks;
    this.#log = deps.log;
  }

  /** Resumes every rollout the store holds as running (a hub start). */
  async resumeAll(): Promise<void> {
    for (const rollout of await this.#store.listRunningRollouts()) {
      this.#log.info({ rollout: rollout.id, stack: rollout.stack, wave: rollout.wave }, 'resuming stack rollout');
      void this.start(rollout);
    }
  }

  /**
   * Starts (or joins) a rollout. Resolves once the current wave's jobs are filed, with their
   * ids; the rest of the rollout goes on in the background.
   */
  start(rollout: RolloutRecord): Promise<string[]> {
    return new Promise((resolveFiled, rejectFiled) => {
      if (this.#running.has(rollout.id)) {
        void this.#store.getRollout(rollout.id).then((r) => resolveFiled(r?.jobIds ?? rollout.jobIds), rejectFiled);
        return;
      }
      const run = this.#run(rollout, resolveFiled)
        .catch(async (err: unknown) => {
          rejectFiled(err);
          if (this.#abort.signal.aborted) return; // the hub is stopping: resumed at the next start
          this.#log.error({ err, rollout: rollout.id }, 'stack rollout failed');
          await this.#store
            .updateRollout(rollout.id, { state: 'failed', error: 'the rollout stopped on an internal error', finishedAt: Date.now() })
            .catch((e: unknown) => this.#log.error({ err: e }, 'could not record a failed rollout'));
        })
        .finally(() => this.#running.delete(rollout.id));
      this.#running.set(rollout.id, run);
    });
  }

  /** Waits for a rollout this runner is carrying (tests, CLI --wait through the API). */
  async settled(id: string): Promise<void> {
    await this.#running.get(id);
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#running.values()]);
  }

  async #run(rollout: RolloutRecord, filed: (ids: string[]) => void): Promise<void> {
    const signal = this.#abort.signal;
    const plan = waves(rollout.nodes, rollout.parallel);
    const jobIds = [...rollout.jobIds];
    let announced = false;
    const announce = (): void => {
      if (!announced) filed([...jobIds]);
      announced = true;
    };
    for (let wave = rollout.wave; wave < plan.length; wave++) {
      const jobs: StackJobView[] = [];
      for (const node of plan[wave]!) {
        const job = await this.#jobs.file(await this.#hooks.jobFor(rollout, node));
        await this.#jobs.release(job.id); // a signed rollout's job, filed up front, now has its turn
        if (!jobIds.includes(job.id)) jobIds.push(job.id);
        await this.#hooks.filed(rollout, job);
        jobs.push(job);
      }
      await this.#store.updateRollout(rollout.id, { wave, jobIds });
      announce();
      const finals = await Promise.all(
        jobs.map(async (job) => {
          const final = await this.#jobs.wait(job.id, signal);
          await this.#hooks.finished(rollout, final);
          return final;
        }),
      );
      const failed = finals.find((j) => j.state === 'failed');
      if (failed) {
        await this.#store.updateRollout(rollout.id, {
          state: 'failed',
          stoppedAtNode: failed.node,
          error: `${failed.node}: ${failed.error ?? 'the job failed'}`,
          finishedAt: Date.now(),
        });
        this.#log.warn({ rollout: rollout.id, stack: rollout.stack, node: failed.node }, 'stack rollout stopped at a failed node');
        await this.#hooks.stopped(rollout, plan.slice(wave + 1).flat(), `the rollout stopped at ${failed.node} before this node's turn`);
        return;
      }
      await this.#store.updateRollout(rollout.id, { wave: wave + 1 });
    }
    announce();
    await this.#store.updateRollout(rollout.id, { state: 'succeeded', finishedAt: Date.now() });
  }
}
