/** The runner an agent uses when it has no stack applier wired in: every job fails, saying so. */
import type { StackJobRunner } from './job-runner.ts';

export const unavailableRunner: StackJobRunner = {
  async run(job) {
    const now = Date.now();
    return { state: 'failed', error: `this agent cannot run ${job.kind} jobs: no stack runner is wired in`, revision: 0, rolledBack: false, startedAt: now, finishedAt: now };
  },
};
