/**
 * Per-volume backup policies carried out on the agent's own clock (issue 14, items 4–5), also
 * while the hub is away. The hub sends the node's whole set as a `volume-policies` job; it is
 * kept in the state dir (atomic write; an older revision than the one held is ignored). Each
 * tick, a volume whose backup is due runs through the same runner as an on-demand backup (stop
 * labels, pre/post commands, key custody all apply), and one whose verification is due is
 * verified (backup-verify.ts). Never two runs at once per volume. Due is judged from the last
 * run (backup-report.ts), so after downtime a volume catches up once, not once per missed slot.
 *
 * Schedules: an interval (`6h`: due that long after the last attempt; at once when never run)
 * or a daily UTC time (`03:30`: due when that time has passed since the last attempt, or since
 * the policy was set).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';
import { DAILY_TIME, intervalMs, volumePoliciesSpec, type VolumeBackupPolicy, type VolumePoliciesSpec } from '../../protocol/volume-backup.ts';
import type { JobContext } from '../jobs/job-runner.ts';
import type { BackupReports } from './backup-report.ts';
import type { BackupVerifier } from './backup-verify.ts';
import type { VolumeBackupRunner } from './volume-backup-runner.ts';

export const POLICIES_FILE = 'backup-policies.json';
const TICK_MS = 1_000;

export interface BackupScheduleDeps {
  node: string;
  stateDir: string;
  runner: VolumeBackupRunner;
  verifier: BackupVerifier;
  reports: BackupReports;
  log: Logger;
  now?: () => number;
}

/** When a backup under `every` is due, given the last attempt (null: never) and when the policy was set. */
export function backupDue(every: string, last: number | null, setAt: number, now: number): boolean {
  const daily = DAILY_TIME.exec(every);
  if (daily) {
    const today = new Date(now);
    let slot = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate(), Number(daily[1]), Number(daily[2]));
    if (slot > now) slot -= 86_400_000;
    return (last ?? setAt) < slot;
  }
  const ms = intervalMs(every);
  if (ms === null) return false;
  return last === null || now - last >= ms;
}

export class BackupSchedule {
  readonly #deps: BackupScheduleDeps;
  readonly #path: string;
  #set: VolumePoliciesSpec = { revision: 0, policies: [] };
  /** Volumes with a backup or verification running now. */
  readonly #busy = new Set<string>();
  readonly #running = new Set<Promise<void>>();

  constructor(deps: BackupScheduleDeps) {
    this.#deps = deps;
    this.#path = join(deps.stateDir, POLICIES_FILE);
  }

  get policies(): readonly VolumeBackupPolicy[] {
    return this.#set.policies;
  }

  /** Reads the set an earlier run kept; a malformed file is logged and treated as none (the hub sends it again on a change). */
  async load(): Promise<void> {
    const text = await readFile(this.#path, 'utf8').catch(() => null);
    if (text === null) return;
    let raw: unknown = null;
    try {
      raw = JSON.parse(text);
    } catch { /* reported below */ }
    const parsed = volumePoliciesSpec.safeParse(raw);
    if (parsed.success) this.#set = parsed.data;
    else this.#deps.log.error({ file: this.#path }, 'the kept backup policies cannot be read; none run until the hub sends them again');
  }

  /** The `volume-policies` job: keep the set (unless an older revision than the one held). */
  async apply(job: JobRequest, ctx: JobContext): Promise<JobResult> {
    const startedAt = Date.now();
    const result = (error: string | null): JobResult => ({ state: error === null ? 'succeeded' : 'failed', error, revision: 0, rolledBack: false, startedAt, finishedAt: Date.now() });
    const spec = job.policies;
    if (!spec) return result('a volume-policies job without its policies');
    if (spec.revision < this.#set.revision) {
      ctx.log(`kept revision ${this.#set.revision}; this job carries the older revision ${spec.revision}`);
      return result(null);
    }
    await ctx.step(`keep ${spec.policies.length} backup polic${spec.policies.length === 1 ? 'y' : 'ies'} (revision ${spec.revision})`, () => writeFileDurably(this.#path, `${JSON.stringify(spec)}\n`));
    this.#set = spec;
    for (const p of spec.policies) ctx.log(`${p.volume}: every ${p.every}, verify every ${p.verifyEvery}`);
    return result(null);
  }

  /** Runs until the signal: a tick a second; waits for runs under way to stop. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        this.#tick(signal);
      } catch (err) {
        this.#deps.log.error({ err }, 'backup schedule tick failed');
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, TICK_MS);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
    await Promise.all([...this.#running]);
  }

  #tick(signal: AbortSignal): void {
    const now = this.#deps.now?.() ?? Date.now();
    for (const policy of this.#set.policies) {
      if (this.#busy.has(policy.volume)) continue;
      const report = this.#deps.reports.get(policy.volume);
      if (backupDue(policy.every, report?.backup?.at ?? null, policy.setAt, now)) {
        this.#start(policy.volume, () => this.#backup(policy, signal));
        continue;
      }
      const verifyMs = intervalMs(policy.verifyEvery) ?? 86_400_000;
      const lastVerify = report?.verify?.at ?? null;
      const anyBackup = report?.backup?.ok === true || report?.backup?.snapshot != null;
      if (anyBackup && (lastVerify === null || now - lastVerify >= verifyMs)) this.#start(policy.volume, () => this.#verify(policy, signal));
    }
  }

  #start(volume: string, work: () => Promise<void>): void {
    this.#busy.add(volume);
    const run: Promise<void> = work()
      .catch((err: unknown) => this.#deps.log.error({ err, volume }, 'scheduled backup run failed'))
      .finally(() => {
        this.#busy.delete(volume);
        this.#running.delete(run);
      });
    this.#running.add(run);
  }

  async #backup(policy: VolumeBackupPolicy, signal: AbortSignal): Promise<void> {
    const { log, node } = this.#deps;
    const now = Date.now();
    const hasRetention = Object.values(policy.retention).some((v) => v !== undefined);
    const job: JobRequest = {
      id: `job_${randomBase36(24)}`, kind: 'volume-backup', node, stack: '', target: null, secrets: { env: {}, files: {} },
      createdAt: now, expiresAt: now + 86_400_000,
      volume: { volume: policy.volume, repository: policy.repository, ...(hasRetention ? { retention: policy.retention } : {}) },
    };
    log.info({ volume: policy.volume, run: job.id }, 'scheduled backup started');
    const result = await this.#deps.runner.run(job, quietContext(log, policy.volume, signal));
    if (signal.aborted) return; // stopped with the agent: not an outcome; due again on the next start
    const out = result.volume;
    await this.#deps.reports.recordBackup(policy.volume, {
      at: result.finishedAt, ok: result.state === 'succeeded', snapshot: out?.snapshot ?? null, bytesAdded: out?.bytesAdded ?? null,
      durationMs: Math.max(0, result.finishedAt - result.startedAt), error: result.error === null ? null : result.error.slice(0, 2_000),
    });
    // A first backup under escrow custody made the key: the hub keeps the wrapped form; the
    // recovery code stays in the host's key file (`dockfleet agent backup-recovery-code`).
    if (out?.escrowedKey) {
      await this.#deps.reports.recordEscrow({ repository: out.repository, escrowedKey: out.escrowedKey, createdAt: result.finishedAt });
      log.warn({ volume: policy.volume, repository: out.repository }, 'a scheduled backup made a new escrowed repository key; read its recovery code on this host with `dockfleet agent backup-recovery-code --state DIR`');
    }
    log.info({ volume: policy.volume, state: result.state, snapshot: out?.snapshot ?? null, error: result.error }, 'scheduled backup finished');
  }

  async #verify(policy: VolumeBackupPolicy, signal: AbortSignal): Promise<void> {
    const outcome = await this.#deps.verifier.verify(policy, signal);
    if (signal.aborted) return;
    await this.#deps.reports.recordVerify(policy.volume, outcome);
    this.#deps.log.info({ volume: policy.volume, ok: outcome.ok, snapshot: outcome.snapshot, detail: outcome.detail }, 'scheduled verification finished');
  }
}

function randomBase36(n: number): string {
  let id = '';
  for (const b of randomBytes(n)) id += (b % 36).toString(36);
  return id;
}

/** A scheduled run's context: steps run as they are, log lines go to the agent's log. */
function quietContext(log: Logger, volume: string, signal: AbortSignal): JobContext {
  return {
    signal, resumed: false,
    step: (_name, run) => run(),
    log: (line) => log.debug({ volume }, line),
  };
}
