/**
 * The agent's runner for volume jobs (issue 14): `volume-backup` backs a volume's mountpoint up
 * with restic (tagged with the node and volume; the repository made on first use; forget
 * --prune per the retention after), `volume-restore` writes a snapshot into the volume or into a
 * new one (`to`), `volume-snapshots` lists the volume's snapshots. Containers using the volume
 * that carry `dockfleet.backup.stop=true` are stopped around the backup (backup-stops.ts),
 * `dockfleet.backup.pre` / `.post` run inside their container before and after. Every failure
 * is a failed result with restic's reason in words; nothing is left stopped.
 *
 * The restic environment is the job's own `secretEnv` over what the hub keeps for the repository
 * (hub-kept-secrets.ts: the hub-managed password, a policy's URL credentials); restic sees only
 * the password and a storage backend's credential variables.
 *
 * Run again after a crash (`resumed`), a job converges: a backup makes a new snapshot, a restore
 * writes the same files again.
 */
import type { JobRequest, JobResult } from '../../protocol/jobs.ts';
import type { VolumeJobOutput, VolumeJobSpec, SnapshotSummary } from '../../protocol/volume-backup.ts';
import type { JobContext } from '../jobs/job-runner.ts';
import type { BackupsPolicy } from '../policy/policy-file.ts';
import type { StackEngine } from '../stacks/stack-engine.ts';
import { ESCROW_FILES } from '../../protocol/escrow-files.ts';
import { decodeHubKept } from '../../protocol/hub-kept-secrets.ts';
import { BackupKeys } from './backup-keys.ts';
import { BackupRefused, resolveRepository, type ResolvedRepository } from './backup-repository.ts';
import { STOP_LABEL, type BackupStops } from './backup-stops.ts';
import { execInContainer } from './container-exec.ts';
import { OPEN_TIMEOUT_MS, restic, ResticError } from './restic-runner.ts';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SEEN_FILE, SeenRepositories } from './seen-repositories.ts';

export const PRE_LABEL = 'dockfleet.backup.pre';
export const POST_LABEL = 'dockfleet.backup.post';
/** At most this many progress lines per backup go to the job's log (one every PROGRESS_EVERY_MS). */
const MAX_PROGRESS_LINES = 200;
const PROGRESS_EVERY_MS = 2_000;

export interface VolumeBackupDeps {
  node: string;
  stateDir: string;
  engine: StackEngine;
  stops: BackupStops;
  /** The host policy's `backups` section now (null: absent, jobs refused). */
  policy: () => BackupsPolicy | null | undefined;
}

interface UsingContainer {
  id: string;
  name: string;
  running: boolean;
  labels: Record<string, string>;
}

class JobFailure extends Error {}

export class VolumeBackupRunner {
  readonly #deps: VolumeBackupDeps;
  readonly #keys: BackupKeys;
  readonly #seen: SeenRepositories;

  constructor(deps: VolumeBackupDeps) {
    this.#deps = deps;
    this.#keys = new BackupKeys(deps.stateDir);
    this.#seen = new SeenRepositories(deps.stateDir);
  }

  async run(job: JobRequest, ctx: JobContext): Promise<JobResult> {
    const startedAt = Date.now();
    const done = (error: string | null, volume?: VolumeJobOutput): JobResult => ({
      state: error === null ? 'succeeded' : 'failed',
      error,
      revision: 0,
      rolledBack: false,
      startedAt,
      finishedAt: Date.now(),
      ...(volume ? { volume } : {}),
    });
    const spec = job.volume;
    if (!spec) return done(`a ${job.kind} job without its volume`);
    const kept = decodeHubKept(job.secrets.files);
    if (!kept) return done('the secrets the hub keeps for this repository came malformed; nothing was run');
    // One environment for every restic call of the job: the filer's secretEnv wins over the hub's.
    job = { ...job, secrets: { env: { ...kept.env, ...job.secrets.env }, files: job.secrets.files } };
    const policy = this.#deps.policy();
    if (!policy) return done(`this host's policy has no backups section, so volume backups, restores and snapshot lists do not run here (add "backups": {} to turn them on)`);
    try {
      const repo = await ctx.step('resolve the repository', async () => resolveRepository(spec.repository, policy, { dataRoot: await this.#dataRoot(), stateDir: this.#deps.stateDir }));
      ctx.log(`repository ${repo.label} (key custody ${policy.custody})`);
      if (job.kind === 'volume-backup') return done(null, await this.#backup(job, spec, repo, policy, ctx));
      if (job.kind === 'volume-restore') return done(null, await this.#restore(job, spec, repo, policy, ctx));
      return done(null, await this.#snapshots(job, spec, repo, policy, ctx));
    } catch (err) {
      if (err instanceof BackupRefused || err instanceof JobFailure || err instanceof ResticError) return done(err.message);
      return done(`the ${job.kind} failed: ${(err as Error).message ?? String(err)}`);
    }
  }

  async #dataRoot(): Promise<string | null> {
    const info = (await this.#deps.engine.must('GET', '/info')) as { DockerRootDir?: unknown };
    return typeof info?.DockerRootDir === 'string' ? info.DockerRootDir : null;
  }

  #cacheDir(): string {
    return join(this.#deps.stateDir, 'restic-home');
  }

  /** The password, making the repository (and, unless hub-managed, its key) on first use. */
  async #open(
    job: JobRequest,
    spec: VolumeJobSpec,
    repo: ResolvedRepository,
    policy: BackupsPolicy,
    ctx: JobContext,
    mayCreate: boolean,
  ): Promise<{ password: string; created: VolumeJobOutput | null }> {
    const hubPassword = job.secrets.env.RESTIC_PASSWORD;
    // Every call here only opens or makes the repository: bounded, so a silent server fails the job in time.
    const call = { repo: repo.repo, options: repo.options, env: job.secrets.env, cacheDir: await this.#home(), signal: ctx.signal, timeoutMs: OPEN_TIMEOUT_MS };
    const known = await this.#keys.password(repo.label, policy.custody, { hubPassword, mayCreate: false });
    if (known) {
      try {
        await restic({ ...call, password: known.password, args: ['cat', 'config'] });
        await this.#seen.add(repo.label);
        return { password: known.password, created: null };
      } catch (err) {
        if (!(err instanceof ResticError) || err.kind !== 'no-repository' || !mayCreate) throw err;
        if (await this.#seen.has(repo.label)) {
          throw new JobFailure(
            `the repository ${repo.label} was there before and is gone now (a disk that is not mounted?); this host will not make a new one in its place — mount it again, or, to start afresh there, take it out of the agent's ${SEEN_FILE}`,
          );
        }
        await ctx.step('initialise the repository', () => restic({ ...call, password: known.password, args: ['init'] }));
        await this.#seen.add(repo.label);
        return { password: known.password, created: null };
      }
    }
    // A replacement host: the hub sent the escrowed key and the operator's recovery code.
    const wrapped = job.secrets.files[ESCROW_FILES.wrappedKey];
    const code = job.secrets.files[ESCROW_FILES.recoveryCode];
    if (wrapped && code) {
      const password = await ctx.step('unwrap the escrowed key with the recovery code', () =>
        this.#keys.adoptEscrowed(repo.label, Buffer.from(wrapped, 'base64').toString('utf8'), Buffer.from(code, 'base64').toString('utf8')),
      );
      if (password === null) throw new JobFailure(`the recovery code given does not open the escrowed key of ${repo.label}`);
      return { password, created: null };
    }
    // No key here: only a repository that does not exist yet may get a new one.
    const exists = await this.#exists(repo, call);
    if (exists) throw new JobFailure(`the repository ${repo.label} exists, and this host holds no key for it (custody ${policy.custody}); restore the key file or use the escrowed key`);
    if (!mayCreate) throw new JobFailure(`there is no repository at ${repo.label} yet (no backup of this volume was made there)`);
    const made = await this.#keys.password(repo.label, policy.custody, { hubPassword, mayCreate: true, revealTo: spec.revealTo });
    if (!made) throw new JobFailure('no key could be made for the repository');
    await ctx.step('initialise the repository', () => restic({ ...call, password: made.password, args: ['init'] }));
    await this.#seen.add(repo.label);
    const created: VolumeJobOutput = { repository: repo.label, snapshot: null, volume: null, custody: policy.custody };
    if (made.created?.escrowedKey) created.escrowedKey = made.created.escrowedKey;
    if (made.created?.recoveryCodeSealed) created.recoveryCodeSealed = made.created.recoveryCodeSealed;
    if (policy.custody === 'escrow')
      ctx.log("a new repository key was made; its recovery code is in the result, sealed to whoever filed the job, and on this host in the agent's state dir (backup-keys/, 0600)");
    return { password: made.password, created };
  }

  async #home(): Promise<string> {
    await mkdir(this.#cacheDir(), { recursive: true, mode: 0o700 });
    return this.#cacheDir();
  }

  async #exists(repo: ResolvedRepository, call: { repo: string; options: string[]; env: Record<string, string>; cacheDir: string; signal: AbortSignal; timeoutMs: number }): Promise<boolean> {
    if (repo.repo.startsWith('/'))
      return stat(join(repo.repo, 'config')).then(
        () => true,
        () => false,
      );
    try {
      await restic({ ...call, password: 'dockfleet-probe-not-a-key', args: ['cat', 'config'] });
      return true;
    } catch (err) {
      if (err instanceof ResticError && err.kind === 'no-repository') return false;
      if (err instanceof ResticError && err.kind === 'wrong-password') return true;
      throw err;
    }
  }

  async #mountpoint(volume: string): Promise<string | null> {
    const info = await this.#deps.engine.inspect('volumes', volume);
    if (!info) return null;
    if (info.Driver !== 'local') throw new JobFailure(`volume ${volume} uses the ${String(info.Driver)} driver; only local volumes are backed up`);
    if (typeof info.Mountpoint !== 'string' || !info.Mountpoint.startsWith('/')) throw new JobFailure(`the engine gives no mountpoint for volume ${volume}`);
    return info.Mountpoint;
  }

  async #using(volume: string): Promise<UsingContainer[]> {
    const filters = encodeURIComponent(JSON.stringify({ volume: [volume] }));
    const list = (await this.#deps.engine.must('GET', `/containers/json?all=1&filters=${filters}`)) as Array<Record<string, any>>;
    return list.map((c) => ({ id: String(c.Id), name: String(c.Names?.[0] ?? c.Id).replace(/^\//, ''), running: c.State === 'running', labels: (c.Labels ?? {}) as Record<string, string> }));
  }

  async #hook(ctx: JobContext, which: 'pre' | 'post', containers: UsingContainer[]): Promise<void> {
    const label = which === 'pre' ? PRE_LABEL : POST_LABEL;
    for (const c of containers) {
      const command = c.labels[label];
      if (!command || !c.running) continue;
      const outcome = await ctx.step(`${which} command in ${c.name}`, async () => {
        const result = await execInContainer(this.#deps.engine, c.id, command);
        for (const line of result.output) ctx.log(`${c.name}: ${line}`);
        if (result.exitCode !== 0) throw new JobFailure(`the ${which} command in ${c.name} (${label}) exited with ${result.exitCode}${which === 'pre' ? '; no backup was made' : ''}`);
        return result;
      });
      void outcome;
    }
  }

  async #backup(job: JobRequest, spec: VolumeJobSpec, repo: ResolvedRepository, policy: BackupsPolicy, ctx: JobContext): Promise<VolumeJobOutput> {
    const mountpoint = await this.#mountpoint(spec.volume);
    if (!mountpoint) throw new JobFailure(`there is no volume ${spec.volume} on this host`);
    const using = await this.#using(spec.volume);
    const toStop = using.filter((c) => c.running && c.labels[STOP_LABEL] === 'true');
    const base = { repo: repo.repo, options: repo.options, env: job.secrets.env, cacheDir: await this.#home(), signal: ctx.signal };
    let call = { ...base, password: '' };
    let created: VolumeJobOutput | null = null;
    let summary: Record<string, unknown> | null = null;
    await this.#deps.stops.around(
      job.id,
      spec.volume,
      toStop.map((c) => c.id),
      async () => {
        await this.#hook(ctx, 'pre', using);
        for (const c of toStop) c.running = false;
      },
      async () => {
        // The repository is opened (or made) with the containers stopped: whatever fails from here, they start again.
        const opened = await this.#open(job, spec, repo, policy, ctx, true);
        call = { ...base, password: opened.password };
        created = opened.created;
        let lines = 0;
        let last = 0;
        await ctx.step(`back up volume ${spec.volume}`, () =>
          restic({
            ...call,
            args: ['backup', '--json', '--host', this.#deps.node, '--tag', `dockfleet,node=${this.#deps.node},volume=${spec.volume}`, '.'],
            cwd: mountpoint,
            onJson: (value) => {
              const msg = value as Record<string, unknown>;
              if (msg.message_type === 'summary') summary = msg;
              else if (msg.message_type === 'status' && lines < MAX_PROGRESS_LINES && Date.now() - last >= PROGRESS_EVERY_MS) {
                last = Date.now();
                lines++;
                ctx.log(
                  `progress ${Math.round(Number(msg.percent_done ?? 0) * 100)}%: ${Number(msg.files_done ?? 0)} of ${Number(msg.total_files ?? 0)} files, ${Number(msg.bytes_done ?? 0)} of ${Number(msg.total_bytes ?? 0)} bytes`,
                );
              } else if (msg.message_type === 'error') ctx.log(`restic: ${String((msg.error as { message?: unknown } | undefined)?.message ?? JSON.stringify(msg.error)).slice(0, 500)}`);
            },
          }),
        );
      },
      (line) => ctx.log(line),
    );
    for (const c of using) if (toStop.some((s) => s.id === c.id)) c.running = true;
    const made = summary as Record<string, unknown> | null;
    const snapshot = typeof made?.snapshot_id === 'string' ? made.snapshot_id : null;
    ctx.log(`snapshot ${snapshot ?? '(unknown)'}: ${Number(made?.files_new ?? 0)} new files, ${Number(made?.data_added ?? 0)} bytes added`);
    await this.#hook(ctx, 'post', using);
    const keep = spec.retention ? retentionArgs(spec.retention) : [];
    if (keep.length > 0) {
      await ctx.step('forget and prune per the retention', () =>
        restic({ ...call, args: ['forget', '--prune', '--host', this.#deps.node, '--tag', `node=${this.#deps.node},volume=${spec.volume}`, ...keep] }),
      );
    }
    const made0 = created as VolumeJobOutput | null;
    return {
      ...(made0 ?? {}),
      repository: repo.label,
      snapshot,
      volume: spec.volume,
      custody: policy.custody,
      filesNew: Number(made?.files_new ?? 0),
      bytesAdded: Number(made?.data_added ?? 0),
    };
  }

  async #restore(job: JobRequest, spec: VolumeJobSpec, repo: ResolvedRepository, policy: BackupsPolicy, ctx: JobContext): Promise<VolumeJobOutput> {
    const target = spec.to ?? spec.volume;
    const { password } = await this.#open(job, spec, repo, policy, ctx, false);
    const busy = (await this.#using(target)).filter((c) => c.running);
    if (busy.length > 0)
      throw new JobFailure(
        `volume ${target} is in use by running container${busy.length > 1 ? 's' : ''} ${busy.map((c) => c.name).join(', ')}; stop ${busy.length > 1 ? 'them' : 'it'} or restore with --to NEWVOLUME`,
      );
    let mountpoint = await this.#mountpoint(target);
    if (!mountpoint) {
      if (!spec.to) throw new JobFailure(`there is no volume ${target} on this host; name a new one with --to`);
      await ctx.step(`create volume ${target}`, () => this.#deps.engine.must('POST', '/volumes/create', { Name: target, Labels: { 'dockfleet.restored-from': spec.volume } }));
      mountpoint = await this.#mountpoint(target);
      if (!mountpoint) throw new JobFailure(`volume ${target} was created, and the engine gives no mountpoint for it`);
    }
    const call = { repo: repo.repo, options: repo.options, env: job.secrets.env, cacheDir: await this.#home(), signal: ctx.signal, password };
    const snapshot = spec.snapshot ?? 'latest';
    const dest = mountpoint;
    await ctx.step(`restore ${snapshot === 'latest' ? 'the latest snapshot' : `snapshot ${snapshot}`} of ${spec.volume} into ${target}`, () =>
      restic({
        ...call,
        args: ['restore', snapshot, '--host', this.#deps.node, '--tag', `node=${this.#deps.node},volume=${spec.volume}`, '--target', dest],
      }).then(
        (out) => {
          for (const line of out.stdout
            .split('\n')
            .filter((l) => l.trim() !== '')
            .slice(-5))
            ctx.log(line.slice(0, 500));
          return out;
        },
        (err: unknown) => {
          // restic may have written part of the snapshot: say so, so nobody takes the volume as restored.
          const why = err instanceof Error ? err.message : String(err);
          throw new JobFailure(`the restore into volume ${target} is incomplete: ${why}; volume ${target} holds only part of the snapshot (free room and restore again)`);
        },
      ),
    );
    const restored = (await this.#list(call, spec.volume)).filter((s) => snapshot === 'latest' || s.id.startsWith(snapshot) || s.shortId === snapshot);
    return { repository: repo.label, snapshot: restored.at(-1)?.id ?? null, volume: target, custody: policy.custody };
  }

  async #snapshots(job: JobRequest, spec: VolumeJobSpec, repo: ResolvedRepository, policy: BackupsPolicy, ctx: JobContext): Promise<VolumeJobOutput> {
    const { password } = await this.#open(job, spec, repo, policy, ctx, false);
    const call = { repo: repo.repo, options: repo.options, env: job.secrets.env, cacheDir: await this.#home(), signal: ctx.signal, password };
    const snapshots = await ctx.step('list snapshots', () => this.#list(call, spec.volume));
    return { repository: repo.label, snapshot: snapshots.at(-1)?.id ?? null, volume: spec.volume, snapshots: snapshots.slice(-1_000), custody: policy.custody };
  }

  async #list(call: Parameters<typeof restic>[0] extends infer C ? Omit<C & object, 'args'> : never, volume: string): Promise<SnapshotSummary[]> {
    const out = await restic({ ...call, args: ['snapshots', '--json', '--host', this.#deps.node, '--tag', `node=${this.#deps.node},volume=${volume}`] });
    let raw: unknown;
    try {
      raw = JSON.parse(out.stdout.trim() || '[]');
    } catch {
      throw new JobFailure('restic listed the snapshots in a form this agent cannot read');
    }
    if (!Array.isArray(raw)) return [];
    return raw.map((s: Record<string, any>) => ({
      id: String(s.id ?? '').slice(0, 64),
      shortId: String(s.short_id ?? '').slice(0, 64),
      time: String(s.time ?? '').slice(0, 64),
      hostname: String(s.hostname ?? '').slice(0, 256),
      tags: (Array.isArray(s.tags) ? s.tags : []).slice(0, 20).map((t: unknown) => String(t).slice(0, 300)),
      paths: (Array.isArray(s.paths) ? s.paths : []).slice(0, 20).map((p: unknown) => String(p).slice(0, 4_096)),
    }));
  }
}

function retentionArgs(r: NonNullable<VolumeJobSpec['retention']>): string[] {
  return [
    ...(r.keepLast ? ['--keep-last', String(r.keepLast)] : []),
    ...(r.keepDaily ? ['--keep-daily', String(r.keepDaily)] : []),
    ...(r.keepWeekly ? ['--keep-weekly', String(r.keepWeekly)] : []),
    ...(r.keepMonthly ? ['--keep-monthly', String(r.keepMonthly)] : []),
  ];
}
