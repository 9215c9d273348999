/**
 * A lost host rebuilt from the hub's record (issue 14, item 6). When a replacement enrolls with
 * a `--replace` code it takes over the node (takeOver: one transaction), and the hub then
 * carries out a recorded sequence:
 *   1. restore each volume the hub knows NAME backed up (latest snapshot, same volume name),
 *      one `volume-restore` job at a time; a failure stops the rebuild with its reason;
 *   2. once every restore succeeded, deploy each stack NAME held, at the stack's current
 *      revision, as a rollout to NAME alone (the normal rollout machinery);
 *   3. done, or failed with the step and the reason (an alert is raised: rebuild-alert-source.ts).
 * Every step's outcome is stored before the next begins, and every job and rollout is filed
 * under an idempotency key of the rebuild, so a hub restarted midway resumes where it stood.
 *
 * A failed rebuild is retried (`retry`, POST /api/v1/nodes/NAME/rebuild): a new rebuild with a
 * new id (so its jobs are filed anew) that keeps every step the failed one finished and runs
 * the rest, with the secrets given then (a corrected recovery code or password) over the ones
 * given before.
 *
 * Which volumes (the source of truth): the hub's own record of NAME's backups: its backup
 * policies and the volume-backup jobs that succeeded on it (for each volume, the repository of
 * its newest successful backup job, else its policy's). Snapshots are not listed first: the
 * restore job asks restic for the latest one tagged with NAME and the volume. Hub-managed
 * custody: each restore carries the password the hub made for that repository
 * (volume-backups/hub-kept-secrets.ts); a password given with --restic-password-file wins.
 *
 * Signed intent (issue 13): nothing is filed until the node's agent has reported its policy
 * since this hub started (after a takeover, the NEW host's). When it requires signed intent,
 * each restore job is filed awaiting a signature and each rollout's jobs are filed for signing,
 * the step says `awaiting-signature` and the record's `waiting` says what the operator must do.
 * A restore whose signature did not come in time (or expired on the way) is filed again: the
 * rebuild waits for the operator, it does not fail for their absence.
 *
 * The new host's agent, though, must connect: before its first step a rebuild waits for the
 * node's agent to link and report its policy, at most `linkWaitMs` (default 30 min); a
 * replacement that enrolled and never connected fails the rebuild with what to do (start the
 * agent, then retry), which raises its alert. A retry waits again, from its own start.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import type { BackupRepository, VolumeJobSpec } from '../../protocol/volume-backup.ts';
import type { Logger } from '../../lib/logger.ts';
import type { NodeKeyRecord, Store } from '../../store/store.ts';
import type { RolloutRecord } from '../../store/stack-store.ts';
import type { AuditLog } from '../audit-log.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import { INTENT_EXPIRED_CODE, SIGNATURE_MISSING_CODE } from '../jobs/signing-deadlines.ts';
import type { PolicySummary } from '../../protocol/policy-summary.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { SecretBox } from '../secret-box.ts';
import type { StackService } from '../stacks/stack-service.ts';
import type { RebuildRecord, StackStep, VolumeStep } from './rebuild-record.ts';
import { signingView, type RebuildSigning } from './rebuild-signing.ts';
import { ESCROW_FILES } from '../../protocol/escrow-files.ts';
import { HUB_KEPT_FILE, decodeHubKept, encodeHubKept } from '../../protocol/hub-kept-secrets.ts';
import type { HubKeptSecrets } from '../volume-backups/hub-kept-secrets.ts';

/** How long a rebuild waits for its node's agent to connect and report its policy (a replacement that never does fails it). */
export const DEFAULT_LINK_WAIT_MS = 30 * 60_000;
/** Restore jobs filed per volume when the hub's repository connection drops under one. */
const RESTORE_ATTEMPTS = 3;
/** restic's words when its connection to the hub repository (the rclone bridge) went away mid-run. */
const LOST_HUB_REPOSITORY = /repository at rclone:.*(error talking HTTP to rclone|context canceled|connection (reset|refused|closed)|EOF)/i;

/** What the operator gave with `--replace` for the restores, sealed until they are filed. */
export interface ReplaceSecrets {
  recoveryCode?: string;
  resticPassword?: string;
}

export interface HostRebuildsDeps {
  store: Store;
  jobs: JobQueue;
  stacks: StackService;
  registry: NodeRegistry;
  secrets: SecretBox;
  audit: AuditLog;
  log: Logger;
  /** Hub-managed repository passwords: a restore carries its repository's (no --restic-password-file needed). */
  volumeKeys?: HubKeptSecrets;
  /** How often a running rollout's state is read (tests shorten it). */
  pollMs?: number;
  /** How long the rebuild waits for the node's agent to connect before it fails (default DEFAULT_LINK_WAIT_MS; tests shorten it). */
  linkWaitMs?: number;
}

/** The rebuild timings a hub may be given (tests shorten them). */
export type RebuildTuning = Pick<HostRebuildsDeps, 'pollMs' | 'linkWaitMs'>;

export interface HostRebuildsEvents {
  /** A rebuild's record changed (stored first). */
  changed: [RebuildRecord];
}

const codeContext = (secretHash: string): string => `replace-code:${secretHash}`;
const rebuildContext = (id: string): string => `node-rebuild:${id}`;
const WHO = 'host-rebuild';

export class HostRebuilds extends EventEmitter<HostRebuildsEvents> {
  readonly #deps: HostRebuildsDeps;
  readonly #records = new Map<string, RebuildRecord>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #abort = new AbortController();
  /** The job each step waits on for the operator's signature, by node then step (`volume:NAME`, `stack:NAME`). */
  readonly #awaiting = new Map<string, Map<string, string>>();
  /** Each node's policy as its agent reported it on a link made since this hub started (a takeover forgets the old host's). */
  readonly #reported = new Map<string, PolicySummary>();
  readonly #onLinked = (link: AgentLink): void => {
    link.on('inventory', (msg) => {
      if (msg.t === 'policy' && this.#deps.registry.link(link.nodeId) === link) this.#reported.set(link.nodeName, msg.summary);
    });
  };
  readonly #onFinished = (view: { id: string; kind: string; state: string }): void => {
    if (view.kind === 'volume-backup' && view.state === 'succeeded') void this.#keepEscrow(view.id);
  };

  constructor(deps: HostRebuildsDeps) {
    super();
    this.#deps = deps;
  }

  /** Loads every rebuild, resumes the unfinished ones, and starts keeping escrowed keys. */
  async start(): Promise<void> {
    this.#deps.jobs.on('finished', this.#onFinished);
    this.#deps.registry.on('linked', this.#onLinked);
    await this.#backfillEscrow();
    for (const { record } of await this.#deps.store.rebuilds.rebuilds()) {
      this.#records.set(record.node, record);
      if (record.state === 'restoring' || record.state === 'deploying') {
        this.#deps.log.info({ node: record.node, rebuild: record.id, state: record.state }, 'resuming host rebuild');
        this.#run(record);
      }
    }
  }

  async close(): Promise<void> {
    this.#deps.jobs.off('finished', this.#onFinished);
    this.#deps.registry.off('linked', this.#onLinked);
    this.#abort.abort();
    await Promise.allSettled([...this.#running.values()]);
  }

  view(node: string): RebuildRecord | null {
    return this.#records.get(node) ?? null;
  }

  list(): RebuildRecord[] {
    return [...this.#records.values()];
  }

  /**
   * The jobs the node's rebuild waits on for the operator's signature, each with its step as the
   * record has it and the exact body the signature must cover (rebuild-signing.ts); for
   * `dockfleet node rebuild NAME --sign`.
   */
  async signing(node: string): Promise<RebuildSigning> {
    const record = this.#records.get(node);
    if (!record) throw new DockfleetError('not_found', `node ${node} has not been rebuilt (enroll a replacement with --replace)`);
    return signingView(record, this.#awaiting.get(node) ?? new Map(), this.#deps.jobs);
  }

  /** Settles when the node's rebuild stops running (tests). */
  async settled(node: string): Promise<void> {
    await this.#running.get(node);
  }

  // ---- the replacement code and the takeover (called by Enrollment) ----

  async mintCode(code: Parameters<Store['rebuilds']['insertReplaceCode']>[0], secrets: ReplaceSecrets): Promise<void> {
    const name = code.nodeName!;
    const node = this.#deps.registry.byName(name);
    if (!node) throw new DockfleetError('node_not_found', `no node named ${name} to replace (--replace takes over an existing node; without it, enroll a new one)`);
    if (node.state === 'revoked') throw new DockfleetError('invalid_state', `node ${name} is revoked; a revoked node is not taken over (enroll the host under a new name)`);
    if (node.state === 'pending') throw new DockfleetError('invalid_state', `node ${name} is pending approval, so it has nothing to rebuild; approve or revoke it`);
    const sealed = Object.keys(secrets).length > 0 ? this.#deps.secrets.seal(JSON.stringify(secrets), codeContext(code.secretHash)) : null;
    await this.#deps.store.rebuilds.insertReplaceCode(code, name, sealed);
  }

  async isReplaceCode(secretHash: string): Promise<boolean> {
    return (await this.#deps.store.rebuilds.replaceCode(secretHash)) !== null;
  }

  /** The replacement takes over `name`: old keys retired, its key active, the rebuild recorded and started. */
  async takeOver(secretHash: string, name: string, publicKey: { keyId: string; pem: string }): Promise<void> {
    const { store, registry, secrets, audit, log } = this.#deps;
    const mark = await store.rebuilds.replaceCode(secretHash);
    if (!mark || mark.node !== name) throw new DockfleetError('code_invalid', 'unknown enrollment code');
    const node = registry.byName(name);
    if (node?.state !== 'active') throw new DockfleetError('invalid_state', `node ${name} can no longer be taken over (it is ${node ? node.state : 'gone'})`);
    const given: ReplaceSecrets = mark.sealedSecrets ? (JSON.parse(secrets.openText(mark.sealedSecrets, codeContext(secretHash))) as ReplaceSecrets) : {};
    const at = Date.now();
    const id = `rbd_${randomBytes(12).toString('hex')}`;
    const record: RebuildRecord = {
      id,
      node: name,
      state: 'restoring',
      startedAt: at,
      finishedAt: null,
      custody: '',
      error: null,
      volumes: await this.#planVolumes(name),
      stacks: await this.#planStacks(name),
    };
    record.custody = custodyNote(record.volumes, given);
    const key: NodeKeyRecord = { keyId: publicKey.keyId, nodeId: node.id, publicKey: publicKey.pem, state: 'active', createdAt: at };
    const sealed = Object.keys(given).length > 0 ? secrets.seal(JSON.stringify(given), rebuildContext(id)) : null;
    await store.rebuilds.takeOver(secretHash, key, { record, sealedSecrets: sealed });
    // The old host, if it is still connected, is cut off now; its key is refused from here on,
    // and its policy no longer decides whether the rebuild's jobs need signatures.
    this.#reported.delete(name);
    registry.link(node.id)?.close({ t: 'error', code: 'key_retired', message: `node ${name} was taken over by a replacement host` });
    audit.record({ user: WHO, node: name, method: 'REPLACE', path: `/api/v1/enroll node ${name}: key ${publicKey.keyId} replaces the old host's key; rebuild ${id}`, status: 201 });
    log.info({ node: name, rebuild: id, volumes: record.volumes.length, stacks: record.stacks.length }, 'a replacement host took over the node; rebuilding it');
    this.#records.set(name, record);
    this.emit('changed', record);
    this.#run(record);
  }

  /** A new rebuild of `name` from where its failed one stood; the new record (running). */
  async retry(name: string, given: ReplaceSecrets, by: string): Promise<RebuildRecord> {
    const { store, registry, secrets, audit, log } = this.#deps;
    const node = registry.byName(name);
    if (!node) throw new DockfleetError('node_not_found', `no node named ${name}`);
    const was = this.#records.get(name);
    if (!was) throw new DockfleetError('not_found', `node ${name} has not been rebuilt (enroll a replacement with --replace)`);
    if (was.state !== 'failed' || this.#running.has(name)) throw new DockfleetError('invalid_state', `the rebuild of ${name} is ${was.state}; only a failed rebuild is retried`);
    if (node.state !== 'active') throw new DockfleetError('invalid_state', `node ${name} is ${node.state}; a rebuild runs on an active node`);
    const stored = (await store.rebuilds.rebuilds()).find((r) => r.record.id === was.id);
    const before: ReplaceSecrets = stored?.sealedSecrets ? (JSON.parse(secrets.openText(stored.sealedSecrets, rebuildContext(was.id))) as ReplaceSecrets) : {};
    const merged: ReplaceSecrets = { ...before, ...given };
    const id = `rbd_${randomBytes(12).toString('hex')}`;
    // The plan made afresh (a backup or an escrowed key may have arrived since), each step the failed rebuild finished kept as it was.
    const doneVolumes = new Map(was.volumes.filter((v) => v.state === 'succeeded').map((v) => [v.volume, v]));
    const doneStacks = new Map(was.stacks.filter((s) => s.state === 'succeeded').map((s) => [s.stack, s]));
    const volumes = (await this.#planVolumes(name)).map((v) => doneVolumes.get(v.volume) ?? v);
    const stacks = (await this.#planStacks(name)).map((s) => doneStacks.get(s.stack) ?? s);
    const record: RebuildRecord = { id, node: name, state: 'restoring', startedAt: Date.now(), finishedAt: null, custody: custodyNote(volumes, merged), volumes, stacks, error: null };
    const sealed = Object.keys(merged).length > 0 ? secrets.seal(JSON.stringify(merged), rebuildContext(id)) : null;
    if (!(await store.rebuilds.retryRebuild(was.id, { record, sealedSecrets: sealed }))) {
      throw new DockfleetError('invalid_state', `the rebuild of ${name} changed meanwhile; read it again`);
    }
    const changed = [given.recoveryCode ? 'a new recovery code' : null, given.resticPassword ? 'a new restic password' : null].filter(Boolean).join(' and ');
    audit.record({ user: by, node: name, method: 'REBUILD', path: `/api/v1/nodes/${name}/rebuild: rebuild ${id} retries ${was.id}${changed ? ` with ${changed}` : ''}`, status: 202 });
    log.info({ node: name, rebuild: id, previous: was.id }, 'retrying a failed host rebuild');
    this.#records.set(name, record);
    this.emit('changed', record);
    this.#run(record);
    return record;
  }

  // ---- the plan ----

  async #planVolumes(node: string): Promise<VolumeStep[]> {
    const { store } = this.#deps;
    const steps = new Map<string, VolumeStep>();
    const step = (volume: string, repository: BackupRepository | null, label: string | null): VolumeStep => ({
      volume,
      repository,
      repositoryLabel: label,
      escrowed: false,
      job: null,
      state: 'pending',
      snapshot: null,
      error: null,
    });
    for (const p of await store.volumeBackups.policies(node)) steps.set(p.volume, step(p.volume, p.policy.repository, p.policy.repository?.kind === 'hub' ? 'hub:volumes' : null));
    const backups = (await store.jobs.listJobs({ node, limit: 10_000 })).filter((j) => j.kind === 'volume-backup' && j.state === 'succeeded').sort((a, b) => a.createdAt - b.createdAt);
    for (const job of backups) {
      const spec = (JSON.parse(job.request) as { volume?: VolumeJobSpec }).volume;
      if (!spec) continue;
      steps.set(spec.volume, step(spec.volume, spec.repository, job.result?.volume?.repository ?? null));
    }
    const escrows = await store.rebuilds.escrows(node);
    for (const s of steps.values()) s.escrowed = escrows.some((e) => e.repository === s.repositoryLabel) || (s.repositoryLabel === null && escrows.length > 0);
    return [...steps.values()].sort((a, b) => a.volume.localeCompare(b.volume));
  }

  async #planStacks(node: string): Promise<StackStep[]> {
    const stacks = this.#deps.store.stacks;
    const held = (await stacks.listStackNodes()).filter((n) => n.node === node);
    const steps: StackStep[] = [];
    for (const h of held) {
      const stack = await stacks.getStack(h.stack);
      if (!stack || stack.removedAt !== null || stack.currentRevision === 0) continue;
      steps.push({ stack: h.stack, revision: stack.currentRevision, rollout: null, state: 'pending', error: null });
    }
    return steps.sort((a, b) => a.stack.localeCompare(b.stack));
  }

  // ---- the sequence ----

  #run(record: RebuildRecord): void {
    if (this.#running.has(record.node)) return;
    const run = this.#carry(record)
      .catch(async (err: unknown) => {
        if (this.#abort.signal.aborted) return; // the hub is stopping: resumed at its next start
        const error = toDockfleetError(err);
        // The replacement's agent never connected: its words say what to do; anything else is ours.
        if (error.code === 'node_offline') return this.#fail(record, error.message).catch(() => {});
        this.#deps.log.error({ err, node: record.node }, 'host rebuild stopped on an internal error');
        await this.#fail(record, `the rebuild stopped on an internal error: ${error.message}`).catch(() => {});
      })
      .finally(() => this.#running.delete(record.node));
    this.#running.set(record.node, run);
  }

  async #save(record: RebuildRecord): Promise<void> {
    await this.#deps.store.rebuilds.saveRebuild(record);
    this.#records.set(record.node, record);
    this.emit('changed', record);
  }

  async #fail(record: RebuildRecord, error: string): Promise<void> {
    record.state = 'failed';
    record.error = error;
    record.waiting = null;
    record.finishedAt = Date.now();
    await this.#save(record);
    this.#deps.log.warn({ node: record.node, rebuild: record.id, error }, 'host rebuild failed');
  }

  async #carry(record: RebuildRecord): Promise<void> {
    // Nothing runs, and nothing is called done, until the new host's agent is here.
    if (record.state === 'restoring' || record.state === 'deploying') await this.#awaitLink(record);
    if (record.state === 'restoring') {
      for (const step of record.volumes) {
        if (step.state === 'succeeded') continue;
        const failed = await this.#restore(record, step);
        if (failed) return this.#fail(record, `restoring volume ${step.volume} failed, so no stack was deployed over missing data: ${failed}`);
      }
      record.state = 'deploying';
      await this.#save(record);
    }
    if (record.state === 'deploying') {
      for (const step of record.stacks) {
        if (step.state === 'succeeded') continue;
        const failed = await this.#deploy(record, step);
        if (failed) return this.#fail(record, `deploying stack ${step.stack} failed: ${failed}`);
      }
      record.state = 'done';
      record.finishedAt = Date.now();
      await this.#save(record);
      this.#deps.log.info({ node: record.node, rebuild: record.id }, 'host rebuild done');
    }
  }

  /**
   * Files (or finds again) the restore job of one volume and waits for it; the reason when it
   * failed. A restore from the hub's own repository that lost its connection to the hub (the hub
   * restarted under it, the link dropped) is filed again, up to RESTORE_ATTEMPTS in all: restoring
   * the same snapshot again converges, and a replacement should not fail for a hub restart.
   */
  async #restore(record: RebuildRecord, step: VolumeStep): Promise<string | null> {
    const { jobs } = this.#deps;
    const signing = await this.#requiresSignature(record);
    for (let attempt = 1, round = 1; ; attempt++) {
      const job = await jobs.file({
        kind: 'volume-restore',
        node: record.node,
        stack: '',
        target: null,
        volume: { volume: step.volume, repository: step.repository, to: step.volume },
        secrets: await this.#restoreSecrets(record, step),
        idempotencyKey: `rebuild:${record.id}:restore:${step.volume}${attempt > 1 ? `:${attempt}` : ''}${round > 1 ? `:signed-${round}` : ''}`,
        createdBy: WHO,
        ...(signing ? { signing: { held: false } } : {}),
      });
      if (job.state === 'awaiting-signature') {
        await this.#awaitSignature(record, step, job.id, `the restore of volume ${step.volume}`);
      } else if (step.job !== job.id || step.state !== 'running') {
        step.job = job.id;
        step.state = 'running';
        await this.#save(record);
      }
      const done = await jobs.wait(job.id, this.#abort.signal);
      const detail = await jobs.get(job.id);
      if (done.errorCode === SIGNATURE_MISSING_CODE || done.errorCode === INTENT_EXPIRED_CODE) {
        // No signature in time, or it expired on the way: filed again, still waiting for the operator.
        this.#deps.log.info({ node: record.node, rebuild: record.id, volume: step.volume, round }, 'a restore job was not signed in time; filing it again for signing');
        attempt--;
        round++;
        continue;
      }
      const error = done.state === 'succeeded' ? null : (done.error ?? 'the restore job failed without a reason');
      if (error !== null && attempt < RESTORE_ATTEMPTS && LOST_HUB_REPOSITORY.test(error)) {
        this.#deps.log.warn({ node: record.node, rebuild: record.id, volume: step.volume, attempt }, 'a restore lost its connection to the hub repository; filing it again');
        continue;
      }
      step.state = error === null ? 'succeeded' : 'failed';
      step.snapshot = detail?.result?.volume?.snapshot ?? null;
      step.error = error;
      await this.#save(record);
      return step.error;
    }
  }

  /**
   * Whether the node's host requires signed intent for mutations (a restore, a deploy), from the
   * policy its agent reported since this hub started; waits for that report (a replacement that
   * has not connected yet has none), saying so in the record.
   */
  async #requiresSignature(record: RebuildRecord): Promise<boolean> {
    const summary = await this.#awaitLink(record);
    return (summary.signedIntent ?? null) !== null;
  }

  /**
   * The policy the node's agent reported on a link made since this hub started; waits for it
   * (saying so in the record) at most linkWaitMs, then throws `node_offline` in words that say
   * what to do. Only the agent's absence is bounded here: a signature is waited for without limit.
   */
  async #awaitLink(record: RebuildRecord): Promise<PolicySummary> {
    let summary = this.#reported.get(record.node);
    if (summary) return summary;
    const limitMs = this.#deps.linkWaitMs ?? DEFAULT_LINK_WAIT_MS;
    const deadline = Date.now() + limitMs;
    await this.#note(
      record,
      `the rebuild waits for node ${record.node}'s agent to connect and report its policy (whether its jobs must be signed); it fails if the agent has not connected within ${spoken(limitMs)}`,
    );
    while (!(summary = this.#reported.get(record.node))) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DockfleetError(
          'node_offline',
          `the replacement host for ${record.node} enrolled but did not connect within ${spoken(limitMs)}; start its agent, then run \`dockfleet node rebuild ${record.node}\``,
        );
      }
      await this.#sleep(left);
    }
    await this.#note(record, null);
    return summary;
  }

  async #note(record: RebuildRecord, waiting: string | null): Promise<void> {
    if ((record.waiting ?? null) === waiting) return;
    record.waiting = waiting;
    await this.#save(record);
  }

  /** Marks the step as waiting for the operator's signature of job `id` and waits until the job leaves that state. */
  async #awaitSignature(record: RebuildRecord, step: VolumeStep | StackStep, id: string, what: string): Promise<void> {
    if ('job' in step) step.job = id;
    const key = 'job' in step ? `volume:${step.volume}` : `stack:${step.stack}`;
    const awaiting = this.#awaiting.get(record.node) ?? new Map<string, string>();
    this.#awaiting.set(record.node, awaiting.set(key, id));
    step.state = 'awaiting-signature';
    record.waiting = `${what} waits for the operator's signature: node ${record.node} requires signed intent; run \`dockfleet node rebuild ${record.node} --sign\` (each signature lives 5 minutes)`;
    await this.#save(record);
    try {
      while ((await this.#deps.jobs.get(id))?.state === 'awaiting-signature') await this.#sleep();
    } finally {
      if (awaiting.get(key) === id) awaiting.delete(key);
    }
    step.state = 'running';
    record.waiting = null;
    await this.#save(record);
  }

  async #restoreSecrets(record: RebuildRecord, step: VolumeStep): Promise<{ env: Record<string, string>; files: Record<string, string> }> {
    const { store, secrets } = this.#deps;
    const sealed = (await store.rebuilds.rebuilds()).find((r) => r.record.id === record.id)?.sealedSecrets ?? null;
    const given: ReplaceSecrets = sealed ? (JSON.parse(secrets.openText(sealed, rebuildContext(record.id))) as ReplaceSecrets) : {};
    // Hub-managed: the password the hub made for the repository (a host under other custody ignores it).
    const files: Record<string, string> = this.#deps.volumeKeys ? await this.#deps.volumeKeys.forVolumeJob(record.node, 'volume-restore', step.repository) : {};
    // A password given with --replace wins over the hub's, and travels with it in the hub-kept
    // file: the agent reads RESTIC_PASSWORD from there alike, and a signed body never carries it.
    if (given.resticPassword) {
      const kept = decodeHubKept(files) ?? { env: {}, volumes: {} };
      files[HUB_KEPT_FILE] = encodeHubKept({ ...kept, env: { ...kept.env, RESTIC_PASSWORD: given.resticPassword } });
    }
    const env: Record<string, string> = {};
    const escrows = await store.rebuilds.escrows(record.node);
    const escrow = escrows.find((e) => e.repository === step.repositoryLabel) ?? (step.repositoryLabel === null ? escrows[0] : undefined);
    if (escrow && given.recoveryCode) {
      files[ESCROW_FILES.wrappedKey] = Buffer.from(escrow.wrappedKey).toString('base64');
      files[ESCROW_FILES.recoveryCode] = Buffer.from(given.recoveryCode).toString('base64');
    }
    return { env, files };
  }

  /** Deploys one stack's current revision to the node as a rollout of its own; the reason when it failed. */
  async #deploy(record: RebuildRecord, step: StackStep): Promise<string | null> {
    const { store, stacks } = this.#deps;
    const stack = await store.stacks.getStack(step.stack);
    if (!stack || stack.removedAt !== null) {
      step.state = 'succeeded';
      step.error = 'the stack was removed since; nothing to deploy';
      await this.#save(record);
      return null;
    }
    const at = Date.now();
    const rollout: RolloutRecord = {
      id: `rol_${randomBytes(12).toString('hex')}`,
      stack: step.stack,
      kind: 'deploy',
      revision: stack.currentRevision,
      nodes: [record.node],
      parallel: 1,
      wave: 0,
      state: 'running',
      stoppedAtNode: null,
      error: null,
      jobIds: [],
      idempotencyKey: `rebuild:${record.id}:${step.stack}`,
      createdBy: WHO,
      createdAt: at,
      finishedAt: null,
    };
    let started: RolloutRecord | null = null;
    while (!started) {
      try {
        started = (await store.stacks.startRollout(rollout, { currentRevision: stack.currentRevision })).rollout;
      } catch (err) {
        if (toDockfleetError(err).code !== 'rollout_in_progress') throw err;
        await this.#sleep(); // another rollout of the stack first; this one follows it
      }
    }
    if (step.rollout !== started.id || step.state !== 'running') {
      step.rollout = started.id;
      step.revision = started.revision;
      step.state = 'running';
      await this.#save(record);
    }
    if (started.state === 'running' && (await this.#requiresSignature(record))) {
      const proposal = await stacks.fileForSigning(started);
      await stacks.runner.start(started);
      for (const job of proposal.jobs) {
        if ((await this.#deps.jobs.get(job.id))?.state === 'awaiting-signature') await this.#awaitSignature(record, step, job.id, `the deploy of stack ${step.stack}`);
      }
    } else if (started.state === 'running') await stacks.runner.start(started);
    for (;;) {
      const now = await store.stacks.getRollout(started.id);
      if (!now) throw new DockfleetError('state_corrupt', `rollout ${started.id} is missing`);
      if (now.state !== 'running') {
        step.state = now.state === 'succeeded' ? 'succeeded' : 'failed';
        step.error = now.state === 'succeeded' ? null : (now.error ?? 'the rollout failed without a reason');
        await this.#save(record);
        return step.error;
      }
      await this.#sleep();
    }
  }

  /** One poll interval (or `atMost`, when shorter); rejects when the hub stops. */
  #sleep(atMost = Infinity): Promise<void> {
    const ms = Math.min(this.#deps.pollMs ?? 500, atMost);
    return new Promise((resolve, reject) => {
      const signal = this.#abort.signal;
      if (signal.aborted) return reject(new DockfleetError('hub_unreachable', 'the hub is stopping'));
      const t = setTimeout(() => {
        signal.removeEventListener('abort', stop);
        resolve();
      }, ms);
      const stop = (): void => {
        clearTimeout(t);
        reject(new DockfleetError('hub_unreachable', 'the hub is stopping'));
      };
      signal.addEventListener('abort', stop, { once: true });
    });
  }

  // ---- escrowed keys ----

  async #keepEscrow(jobId: string): Promise<void> {
    try {
      const job = await this.#deps.store.jobs.getJob(jobId);
      const out = job?.result?.volume;
      if (!job || !out?.escrowedKey) return;
      await this.#deps.store.rebuilds.putEscrow({ node: job.node, repository: out.repository, wrappedKey: out.escrowedKey, createdAt: job.finishedAt ?? Date.now(), jobId });
    } catch (err) {
      this.#deps.log.error({ err, job: jobId }, 'could not keep an escrowed backup key');
    }
  }

  /** Keys escrowed by jobs that finished before this table existed (or while the hub was down). */
  async #backfillEscrow(): Promise<void> {
    for (const job of await this.#deps.store.jobs.listJobs({ limit: 10_000 })) {
      if (job.kind === 'volume-backup' && job.state === 'succeeded' && job.result?.volume?.escrowedKey) await this.#keepEscrow(job.id);
    }
  }
}

/** A wait's length as the operator reads it: `30 min`, `90 s`. */
function spoken(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}

function custodyNote(volumes: readonly VolumeStep[], given: ReplaceSecrets): string {
  if (volumes.length === 0) return 'no volume of this node has a backup the hub knows of';
  if (volumes.some((v) => v.escrowed)) {
    return given.recoveryCode
      ? 'escrow: the hub sends the escrowed key with the recovery code given, sealed in each restore job; the new host unwraps it'
      : 'escrow: the hub holds the escrowed key, but no recovery code was given with --replace, so the restores can open the repository only if the key file is placed on the new host';
  }
  if (given.resticPassword) return 'hub-managed: the restore jobs carry the repository password given with --replace, sealed';
  return 'hub-managed: the restore jobs carry the password the hub keeps for each repository, sealed; host-only: the hub holds no key, so place the key file on the new host in STATE/backup-keys/ before the restores run, or they fail';
}
