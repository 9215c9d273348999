/**
 * The agent's StackJobRunner: a deploy applies the job's revision under the health gate, a
 * rollback applies the agent's own snapshot (with the image IDs it ran) or the job's target, a
 * remove takes the stack's containers and networks away (named volumes stay). Every kind first
 * finishes an apply a crash cut short, so a job run twice converges to the same end.
 */
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';
import type { StackRevision } from '../../protocol/stacks.ts';
import type { JobContext, StackJobRunner } from '../jobs/job-runner.ts';
import { applyStack, finishInterrupted, type ApplyContext, type ApplyOutcome } from './apply-stack.ts';
import type { StackStateDir } from './desired-state.ts';
import { removeStack } from './remove-stack.ts';
import type { StackEngine } from './stack-engine.ts';
import type { StackPolicy } from './stack-policy.ts';

export interface StackRunnerDeps {
  engine: StackEngine;
  policy: StackPolicy;
  state: StackStateDir;
  /** Told when a stack's desired state changed (the drift watcher looks again). */
  onChange?: (stack: string) => void;
}

export class StackApplier implements StackJobRunner {
  readonly #deps: StackRunnerDeps;

  constructor(deps: StackRunnerDeps) {
    this.#deps = deps;
  }

  async run(job: JobRequest, ctx: JobContext): Promise<JobResult> {
    const startedAt = Date.now();
    const apply: ApplyContext = { ...this.#deps, step: (n, r) => ctx.step(n, r), log: (l) => ctx.log(l), signal: ctx.signal };
    try {
      let outcome: ApplyOutcome;
      try {
        await finishInterrupted(apply, job.stack);
        outcome = await this.#kind(job, apply);
      } catch (err) {
        // The engine went away or refused a restore: the journal stays, and a rerun finishes it.
        outcome = { ok: false, error: (err as Error).message, revision: 0, rolledBack: false };
      }
      return {
        state: outcome.ok ? 'succeeded' : 'failed',
        error: outcome.ok ? null : outcome.error.slice(0, 8_000),
        revision: outcome.revision,
        rolledBack: outcome.ok ? job.kind === 'rollback' : outcome.rolledBack,
        startedAt,
        finishedAt: Date.now(),
      };
    } finally {
      this.#deps.onChange?.(job.stack);
    }
  }

  async #kind(job: JobRequest, ctx: ApplyContext): Promise<ApplyOutcome> {
    const workingDir = this.#deps.state.dir(job.stack);
    if (job.kind === 'remove') return removeStack(ctx, job.stack);
    if (job.kind === 'deploy') {
      if (!job.target) return { ok: false, error: 'a deploy job without a target revision', revision: 0, rolledBack: false };
      return applyStack(ctx, { jobId: job.id, target: job.target, secretEnv: job.secrets.env, secretFiles: job.secrets.files, pinnedImages: {} }, workingDir);
    }
    const snapshot = await this.#deps.state.read(job.stack, 'snapshot');
    const useSnapshot = snapshot !== null && (job.target === null || job.target.revision === snapshot.revision.revision);
    const target: StackRevision | null = useSnapshot ? snapshot.revision : job.target;
    if (!target) return { ok: false, error: 'nothing to roll back to: this host holds no earlier revision of the stack and the job names none', revision: 0, rolledBack: false };
    ctx.log(`rolling back to revision ${target.revision}${useSnapshot ? " (this host's snapshot, with the images it ran)" : ''}`);
    return applyStack(ctx, { jobId: job.id, target, secretEnv: job.secrets.env, secretFiles: job.secrets.files, pinnedImages: useSnapshot ? snapshot.images : {} }, workingDir);
  }
}
