/**
 * Volume backups at the agent's start: containers a cut-short backup stopped are started again
 * first (before jobs resume or the hub is heard), then the runner that carries out volume jobs
 * beside the stack applier.
 */
import type { Logger } from '../../lib/logger.ts';
import type { EngineClient } from '../engine-client.ts';
import type { StackJobRunner } from '../jobs/job-runner.ts';
import type { AgentPolicy } from '../policy/policy.ts';
import { StackEngine } from '../stacks/stack-engine.ts';
import { BackupStops } from './backup-stops.ts';
import { VolumeBackupRunner } from './volume-backup-runner.ts';
import { routeVolumeJobs } from './volume-job-router.ts';

export async function startVolumeBackups(opts: { stateDir: string; node: string; engine: EngineClient; policy: AgentPolicy; log: Logger; stacks: StackJobRunner }): Promise<StackJobRunner> {
  const engine = new StackEngine(opts.engine);
  const stops = new BackupStops(opts.stateDir, engine, opts.log);
  try {
    const started = await stops.restartStopped();
    if (started > 0) opts.log.warn({ started }, 'started containers again that a cut-short backup had stopped');
  } catch (err) {
    opts.log.error({ err }, 'could not start containers a cut-short backup stopped; the markers stay for the next start');
  }
  const volumes = new VolumeBackupRunner({ node: opts.node, stateDir: opts.stateDir, engine, stops, policy: () => opts.policy.policy.backups });
  return routeVolumeJobs(opts.stacks, volumes);
}
