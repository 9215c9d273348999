/**
 * Per-volume backup policies carried out on the agent's own clock (issue 14, items 4–5), also
 * while the hub is away. The hub sends the node's whole set as a `volume-policies` job; it is
 * kept in the state dir (atomic write; an older revision than the one held is ignored). Each
 * tick, a volume whose backup is due runs through the same runner as an on-demand backup (stop
 * labels, pre/post commands, key custody all apply), and one whose verification is due is
 * verified (backup-verify.ts). Never two runs at once per volume. Due is judged from the last
 * run (backup-report.ts), so after downtime a volume catches up once, not once per missed slot.
 *
 * What the hub keeps for the policies (hub-kept-secrets.ts: a hub-managed repository's password,
 * a URL repository's credentials) comes sealed in the policies job's secrets; it is kept in
 * POLICY_SECRETS_FILE sealed as the job ledger seals a job's secrets (SecretSeal: a key derived
 * from this agent's own key, bound to the set's revision), and opened only for a run's restic.
 * Sealed under a key that has since rotated, it no longer opens: those runs fail, saying so,
 * until the hub sends the set again.
 *
 * Schedules: an interval (`6h`: due that long after the last attempt; at once when never run)
 * or a daily UTC time (`03:30`: due when that time has passed since the last attempt, or since
 * the policy was set).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.ts';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';
import { DAILY_TIME, intervalMs, volumePoliciesSpec, type VolumeBackupPolicy, type VolumePoliciesSpec } from '../../protocol/volume-backup.ts';
import { decodeHubKept } from '../../protocol/hub-kept-secrets.ts';
import type { JobContext } from '../jobs/job-runner.ts';
import { SecretSeal, sealedSecrets, type StateKeySource } from '../jobs/secret-seal.ts';
import type { BackupReports } from './backup-report.ts';
import type { BackupVerifier } from './backup-verify.ts';
import type { VolumeBackupRunner } from './volume-backup-runner.ts';

export const POLICIES_FILE = 'backup-policies.json';
export const POLICY_SECRETS_FILE = 'backup-policy-secrets.json';
const sealContext = (revision: number): string => `backup-policies:${revision}`;
const TICK_MS = 1_000;

export interface BackupScheduleDeps {
  node: string;
  stateDir: string;
  runner: VolumeBackupRunner;
  verifier: BackupVerifier;
  reports: BackupReports;
  log: Logger;
  now?: () => number;
  /** The agent's identity: seals what the hub keeps for the policies. Without it they are not kept. */
  keys?: StateKeySource;
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
  readonly #seal: SecretSeal | null;

  constructor(deps: BackupScheduleDeps) {
    this.#deps = deps;
    this.#path = join(deps.stateDir, POLICIES_FILE);
    this.#seal = deps.keys ? new SecretSeal(deps.keys) : null;
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
    } catch {
      /* reported below */
    }
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
    const kept = decodeHubKept(job.secrets.files);
    if (!kept) return result('the secrets the hub keeps for these policies came malformed; the set held is kept');
    const volumes = Object.entries(kept.volumes).filter(([volume]) => spec.policies.some((p) => p.volume === volume));
    if (volumes.length > 0 && !this.#seal) return result('this agent cannot keep the secrets of backup policies (no identity to seal them)');
    // The secrets first: a set on disk is never newer than the secrets beside it.
    await ctx.step("keep the policies' secrets, sealed", () =>
      writeFileDurably(
        join(this.#deps.stateDir, POLICY_SECRETS_FILE),
        `${JSON.stringify(
          volumes.length === 0
            ? null
            : { revision: spec.revision, sealed: this.#seal!.seal(sealContext(spec.revision), { env: {}, files: Object.fromEntries(volumes.map(([v, env]) => [v, JSON.stringify(env)])) }) },
        )}\n`,
        0o600,
      ),
    );
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
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
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

  /** What the hub keeps for one policy, opened for one run: {} when nothing is kept; null when it cannot be opened. */
  async #secretEnv(volume: string): Promise<Record<string, string> | null> {
    const text = await readFile(join(this.#deps.stateDir, POLICY_SECRETS_FILE), 'utf8').catch(() => 'null');
    let raw: unknown = null;
    try {
      raw = JSON.parse(text);
    } catch {
      /* treated as damaged below */
    }
    if (raw === null) return {};
    const parsed = z.strictObject({ revision: z.number().int(), sealed: sealedSecrets }).safeParse(raw);
    const opened = parsed.success && this.#seal ? this.#seal.open(sealContext(parsed.data.revision), parsed.data.sealed) : null;
    if (!opened || !parsed.success || parsed.data.revision !== this.#set.revision) return null;
    const env = opened.files[volume];
    return env === undefined ? {} : (JSON.parse(env) as Record<string, string>);
  }

  async #backup(policy: VolumeBackupPolicy, signal: AbortSignal): Promise<void> {
    const { log, node } = this.#deps;
    const now = Date.now();
    const env = await this.#secretEnv(policy.volume);
    if (env === null) {
      await this.#deps.reports.recordBackup(policy.volume, {
        at: Date.now(),
        ok: false,
        snapshot: null,
        bytesAdded: null,
        durationMs: 0,
        error: "the secrets the hub keeps for this policy cannot be opened here (sealed under an older agent key, or damaged); they return with the hub's next policies job",
      });
      return;
    }
    const hasRetention = Object.values(policy.retention).some((v) => v !== undefined);
    const job: JobRequest = {
      id: `job_${randomBase36(24)}`,
      kind: 'volume-backup',
      node,
      stack: '',
      target: null,
      secrets: { env, files: {} },
      createdAt: now,
      expiresAt: now + 86_400_000,
      volume: { volume: policy.volume, repository: policy.repository, ...(hasRetention ? { retention: policy.retention } : {}) },
    };
    log.info({ volume: policy.volume, run: job.id }, 'scheduled backup started');
    const result = await this.#deps.runner.run(job, quietContext(log, policy.volume, signal));
    if (signal.aborted) return; // stopped with the agent: not an outcome; due again on the next start
    const out = result.volume;
    await this.#deps.reports.recordBackup(policy.volume, {
      at: result.finishedAt,
      ok: result.state === 'succeeded',
      snapshot: out?.snapshot ?? null,
      bytesAdded: out?.bytesAdded ?? null,
      durationMs: Math.max(0, result.finishedAt - result.startedAt),
      error: result.error === null ? null : result.error.slice(0, 2_000),
    });
    // A first backup under escrow custody made the key: the hub keeps the wrapped form; the
    // recovery code stays in the host's key file (`dockfleet agent backup-recovery-code`).
    if (out?.escrowedKey) {
      await this.#deps.reports.recordEscrow({ repository: out.repository, escrowedKey: out.escrowedKey, createdAt: result.finishedAt });
      log.warn(
        { volume: policy.volume, repository: out.repository },
        'a scheduled backup made a new escrowed repository key; read its recovery code on this host with `dockfleet agent backup-recovery-code --state DIR`',
      );
    }
    log.info({ volume: policy.volume, state: result.state, snapshot: out?.snapshot ?? null, error: result.error }, 'scheduled backup finished');
  }

  async #verify(policy: VolumeBackupPolicy, signal: AbortSignal): Promise<void> {
    const env = await this.#secretEnv(policy.volume);
    const outcome =
      env === null
        ? {
            at: Date.now(),
            ok: false,
            snapshot: null,
            files: 0,
            bytes: 0,
            durationMs: 0,
            detail: "not verified: the secrets the hub keeps for this policy cannot be opened here; they return with the hub's next policies job",
          }
        : await this.#deps.verifier.verify(policy, signal, env);
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
    signal,
    resumed: false,
    step: (_name, run) => run(),
    log: (line) => log.debug({ volume }, line),
  };
}
