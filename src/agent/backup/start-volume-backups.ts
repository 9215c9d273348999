/**
 * Volume backups at the agent's start: containers a cut-short backup stopped are started again
 * first (before jobs resume or the hub is heard), then the runner that carries out volume jobs
 * beside the stack applier, and the schedule that carries out per-volume policies on its own
 * clock with the outcomes it keeps for the hub.
 */
import type { Logger } from '../../lib/logger.ts';
import type { EngineClient } from '../engine-client.ts';
import type { StackJobRunner } from '../jobs/job-runner.ts';
import type { StateKeySource } from '../jobs/secret-seal.ts';
import type { AgentPolicy } from '../policy/policy.ts';
import { StackEngine } from '../stacks/stack-engine.ts';
import { BackupReports } from './backup-report.ts';
import { BackupSchedule } from './backup-schedule.ts';
import { BackupStops } from './backup-stops.ts';
import { BackupVerifier } from './backup-verify.ts';
import { VolumeBackupRunner } from './volume-backup-runner.ts';
import { routeVolumeJobs } from './volume-job-router.ts';

export interface VolumeBackups {
  /** Every job kind: volume jobs here, the rest to the stack applier. */
  runner: StackJobRunner;
  schedule: BackupSchedule;
  reports: BackupReports;
}

export async function startVolumeBackups(opts: {
  stateDir: string;
  node: string;
  engine: EngineClient;
  policy: AgentPolicy;
  log: Logger;
  stacks: StackJobRunner;
  keys?: StateKeySource;
}): Promise<VolumeBackups> {
  const engine = new StackEngine(opts.engine);
  const stops = new BackupStops(opts.stateDir, engine, opts.log);
  try {
    const started = await stops.restartStopped();
    if (started > 0) opts.log.warn({ started }, 'started containers again that a cut-short backup had stopped');
  } catch (err) {
    opts.log.error({ err }, 'could not start containers a cut-short backup stopped; the markers stay for the next start');
  }
  const volumes = new VolumeBackupRunner({ node: opts.node, stateDir: opts.stateDir, engine, stops, policy: () => opts.policy.policy.backups });
  const reports = await BackupReports.open(opts.stateDir);
  const verifier = new BackupVerifier({ node: opts.node, stateDir: opts.stateDir, engine, policy: () => opts.policy.policy.backups });
  const schedule = new BackupSchedule({ node: opts.node, stateDir: opts.stateDir, runner: volumes, verifier, reports, log: opts.log, ...(opts.keys ? { keys: opts.keys } : {}) });
  await schedule.load();
  return { runner: routeVolumeJobs(opts.stacks, volumes, schedule), schedule, reports };
}
