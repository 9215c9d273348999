/**
 * The agent's one job runner: volume jobs (volume-backup, volume-restore, volume-snapshots) go
 * to the volume backup runner, `volume-policies` to the backup schedule, every other kind to
 * the stack applier, unchanged.
 */
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';
import type { JobContext, StackJobRunner } from '../jobs/job-runner.ts';
import type { BackupSchedule } from './backup-schedule.ts';
import type { VolumeBackupRunner } from './volume-backup-runner.ts';

export const VOLUME_JOB_KINDS: ReadonlySet<string> = new Set(['volume-backup', 'volume-restore', 'volume-snapshots']);

export function routeVolumeJobs(stacks: StackJobRunner, volumes: VolumeBackupRunner, schedule?: BackupSchedule): StackJobRunner {
  return {
    run(job: JobRequest, ctx: JobContext): Promise<JobResult> {
      if (job.kind === 'volume-policies' && schedule) return schedule.apply(job, ctx);
      return VOLUME_JOB_KINDS.has(job.kind) ? volumes.run(job, ctx) : stacks.run(job, ctx);
    },
  };
}
