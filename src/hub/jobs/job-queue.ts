/**
 * The hub's durable job queue: jobs filed for a node, stored before anything else happens,
 * with their secrets sealed by the secret box. A repeated submit (same idempotency key) gets
 * the job it filed before, also when the submits race. Transitions go through here, so
 * `finished` fires once per job; the dispatcher (job-dispatcher.ts) carries jobs to agents.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { DockfleetError } from '../../protocol/errors.ts';
import { jobRequest, jobSignedBody, type JobKind, type JobRequest, type JobResult, type JobStep } from '../../protocol/jobs.ts';
import { decodeIntent, jobOp } from '../../protocol/intent.ts';
import { verifyBytes } from '../../lib/intent-keys.ts';
import type { StackRevision } from '../../protocol/stacks.ts';
import type { JobLogLine, JobRecord, JobStore } from '../../store/job-store.ts';
import type { SecretBox } from '../secret-box.ts';
import { jobDetail, jobView, type JobDetail, type JobView } from './job-views.ts';

export const DEFAULT_JOB_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** A job filed for signing fails when its signature has not come this long after filing. */
export const SIGNATURE_WAIT_MS = 5 * 60 * 1000;

/** How long finished jobs (with their steps and log lines) are kept: the newest `keepFinished`,
 * none older than `maxAgeMs`; a job that finished less than `minAgeMs` ago is always kept (a
 * rollout still waiting on its wave finds its jobs by idempotency key, and must not file them
 * again). Open jobs are never pruned. */
export interface JobRetention {
  keepFinished: number;
  maxAgeMs: number;
  minAgeMs: number;
}
export const DEFAULT_JOB_RETENTION: Readonly<JobRetention> = Object.freeze({ keepFinished: 10_000, maxAgeMs: 30 * DEFAULT_JOB_EXPIRY_MS, minAgeMs: DEFAULT_JOB_EXPIRY_MS });
const MAX_LIST = 1_000;

export interface JobSecrets {
  env: Record<string, string>;
  files: Record<string, string>;
}

export interface FileJobInput {
  kind: JobKind;
  node: string;
  stack: string;
  target: StackRevision | null;
  secrets: JobSecrets;
  idempotencyKey: string;
  createdBy: string;
  /** Default 24 h. */
  expiresInMs?: number;
  /** Filed for signing (issue 13): `awaiting-signature` until its intent arrives; `held` until
   * its rollout reaches it as well. */
  signing?: { held: boolean };
  /** Volume jobs (issue 14): the volume and repository (stack is ''). */
  volume?: JobRequest['volume'];
  /** volume-policies jobs: the node's whole set of backup policies. */
  policies?: JobRequest['policies'];
  /** Carried out by the hub itself (agent-upgrade): held for good, so it is never delivered. */
  hubRun?: boolean;
}

export interface JobQueueEvents {
  /** A new job is stored (not for a repeated submit). */
  filed: [JobView];
  /** A job became final (succeeded or failed). */
  finished: [JobView];
  /** A job may now be delivered (signed, or released by its rollout): its node. */
  ready: [string];
}

/** `job_` and 24 lowercase base-36 characters (about 124 random bits). */
export function newJobId(): string {
  const bytes = randomBytes(24);
  let id = '';
  for (const b of bytes) id += (b % 36).toString(36);
  return `job_${id}`;
}

/** A signed rollout's job of a later wave whose rollout stopped first (StackJobs.abandonHeld). */
export const ROLLOUT_STOPPED_CODE = 'rollout_stopped';

export class JobQueue extends EventEmitter<JobQueueEvents> {
  readonly #store: JobStore;
  readonly #box: SecretBox;

  constructor(store: JobStore, box: SecretBox) {
    super();
    this.setMaxListeners(0);
    this.#store = store;
    this.#box = box;
  }

  async file(input: FileJobInput): Promise<JobView> {
    if (input.target !== null && input.target.stack !== input.stack) {
      throw new DockfleetError('validation_failed', `target: the revision is of stack ${input.target.stack}, not ${input.stack}`);
    }
    if (input.idempotencyKey === '' || input.idempotencyKey.length > 500) throw new DockfleetError('validation_failed', 'idempotencyKey: 1 to 500 characters');
    const id = newJobId();
    const now = Date.now();
    const record: JobRecord = {
      id,
      kind: input.kind,
      node: input.node,
      stack: input.stack,
      revision: input.target?.revision ?? null,
      idempotencyKey: input.idempotencyKey,
      state: input.signing ? 'awaiting-signature' : 'queued',
      request: JSON.stringify({ target: input.target, ...(input.volume ? { volume: input.volume } : {}), ...(input.policies ? { policies: input.policies } : {}) }),
      secrets: this.#box.seal(JSON.stringify({ env: input.secrets.env, files: input.secrets.files }), id),
      createdBy: input.createdBy,
      createdAt: now,
      expiresAt: now + (input.expiresInMs ?? DEFAULT_JOB_EXPIRY_MS),
      startedAt: null,
      finishedAt: null,
      result: null,
      errorCode: null,
      error: null,
      attempts: 0,
      deliveredAt: null,
      deliveryError: null,
      logsDropped: 0,
      intent: null,
      held: input.signing?.held ?? input.hubRun ?? false,
      signBy: input.signing ? now + SIGNATURE_WAIT_MS : null,
    };
    // Checked before it is stored: a job the agent's schema would refuse never enters the queue.
    const check = jobRequest.safeParse(this.#toRequest(record, input.secrets));
    if (!check.success) {
      const issue = check.error.issues[0];
      throw new DockfleetError('validation_failed', `${issue?.path.join('.') || 'job'}: ${issue?.message ?? 'invalid'}`);
    }
    const { inserted, job } = await this.#store.insertJob(record);
    if (!inserted && (job.kind !== input.kind || job.node !== input.node || job.stack !== input.stack)) {
      throw new DockfleetError('idempotency_conflict', `idempotency key already names job ${job.id} (${job.kind} of ${job.stack} on ${job.node})`);
    }
    const view = jobView(job);
    if (inserted) this.emit('filed', view);
    return view;
  }

  async get(id: string): Promise<JobDetail | null> {
    const job = await this.#store.getJob(id);
    if (!job) return null;
    return jobDetail(job, await this.#store.steps(id), await this.#store.logs(id));
  }

  async list(filter: { node?: string | undefined; stack?: string | undefined; limit?: number | undefined } = {}): Promise<JobView[]> {
    const limit = Math.min(Math.max(1, filter.limit ?? 100), MAX_LIST);
    return (await this.#store.listJobs({ node: filter.node, stack: filter.stack, limit })).map(jobView);
  }

  /** Drops finished jobs past the retention bound; returns how many. */
  prune(now = Date.now(), retention: JobRetention = DEFAULT_JOB_RETENTION): Promise<number> {
    return this.#store.pruneFinished({
      keepFinished: retention.keepFinished,
      finishedBefore: now - retention.maxAgeMs,
      settledBefore: now - retention.minAgeMs,
    });
  }

  /** Resolves when the job is final. */
  wait(id: string, signal?: AbortSignal): Promise<JobView> {
    return new Promise((resolve, reject) => {
      const done = (view: JobView): void => {
        if (view.id !== id) return;
        cleanup();
        resolve(view);
      };
      const abort = (): void => {
        cleanup();
        reject(new DockfleetError('hub_unreachable', `stopped waiting for job ${id}`));
      };
      const cleanup = (): void => {
        this.off('finished', done);
        signal?.removeEventListener('abort', abort);
      };
      if (signal?.aborted) return abort();
      // Listening before reading: a job that finishes in between is not missed.
      this.on('finished', done);
      signal?.addEventListener('abort', abort, { once: true });
      this.#store.getJob(id).then(
        (job) => {
          if (!job) {
            cleanup();
            reject(new DockfleetError('not_found', `no job ${id}`));
          } else if (job.state === 'succeeded' || job.state === 'failed') {
            done(jobView(job));
          }
        },
        (err: unknown) => {
          cleanup();
          reject(err);
        },
      );
    });
  }

  // ---- signed jobs (issue 13) ----

  /** The exact bytes the host will check the job's intent against (jobSignedBody of what it will receive). */
  async signedBody(id: string): Promise<string> {
    const job = await this.#store.getJob(id);
    if (!job) throw new DockfleetError('not_found', `no job ${id}`);
    return jobSignedBody(this.request(job));
  }

  /**
   * Stores an operator's intent with a job awaiting one, and lets it go. The hub checks what it
   * can (form, Ed25519 signature, node, operation, body digest) so a mistake is answered here
   * with its reason; the host checks again and alone decides (its own keys, nonce, time).
   */
  async attachIntent(id: string, wire: string): Promise<JobView> {
    const job = await this.#store.getJob(id);
    if (!job) throw new DockfleetError('not_found', `no job ${id}`);
    if (job.state !== 'awaiting-signature') throw new DockfleetError('invalid_state', `job ${id} is ${job.state}, not awaiting a signature`);
    const decoded = decodeIntent(wire);
    if (!decoded.ok) throw new DockfleetError('validation_failed', `intent: ${decoded.reason}`);
    const { claims, signedBytes, signature } = decoded.intent;
    const body = `sha256:${createHash('sha256')
      .update(jobSignedBody(this.request(job)))
      .digest('hex')}`;
    const wrong = !verifyBytes(claims.key, signedBytes, signature)
      ? 'its signature does not verify'
      : claims.node !== job.node
        ? `it is signed for node ${claims.node}, and the job is for ${job.node}`
        : claims.op !== jobOp(job.kind)
          ? `it is signed for "${claims.op}", and the job is "${jobOp(job.kind)}"`
          : claims.body !== body
            ? "it signs another job body than this job's"
            : claims.exp <= Date.now()
              ? 'it has expired'
              : null;
    if (wrong !== null) throw new DockfleetError('validation_failed', `intent: ${wrong}`);
    if (!(await this.#store.attachIntent(id, wire))) throw new DockfleetError('invalid_state', `job ${id} is no longer awaiting a signature`);
    const signed = await this.#store.getJob(id);
    if (signed && !signed.held) this.emit('ready', signed.node);
    return jobView(signed ?? job);
  }

  /**
   * The operator's CLI refused to sign the job (the hub's proposal differed from what was asked):
   * it fails at once, so its rollout ends now rather than when the signature would be overdue.
   */
  async decline(id: string, reason: string): Promise<JobView> {
    const job = await this.#store.getJob(id);
    if (!job) throw new DockfleetError('not_found', `no job ${id}`);
    if (job.state !== 'awaiting-signature') throw new DockfleetError('invalid_state', `job ${id} is ${job.state}, not awaiting a signature`);
    await this.finish(id, { errorCode: 'signature_declined', error: `the operator declined to sign it: ${reason}`.slice(0, 2_000) });
    return jobView((await this.#store.getJob(id)) ?? job);
  }

  /** A rollout reached the job: deliverable once signed (a no-op for a job that was never held). */
  async release(id: string): Promise<void> {
    const job = await this.#store.getJob(id);
    if (!job?.held) return;
    await this.#store.release(id);
    if (job.state === 'queued') this.emit('ready', job.node);
  }

  async abandonHeld(idempotencyKeys: readonly string[], reason: string): Promise<number> {
    const keys = new Set(idempotencyKeys);
    let failed = 0;
    for (const job of await this.#store.signingJobs()) {
      if (!job.held || !keys.has(job.idempotencyKey)) continue;
      if (await this.finish(job.id, { errorCode: ROLLOUT_STOPPED_CODE, error: reason.slice(0, 2_000) })) failed++;
    }
    return failed;
  }

  /** Jobs awaiting a signature, or signed and held by their rollout. */
  signingJobs(): Promise<JobRecord[]> {
    return this.#store.signingJobs();
  }

  // ---- for the dispatcher ----

  /** Queued and running jobs, oldest first. */
  open(node?: string): Promise<JobRecord[]> {
    return this.#store.openJobs(node);
  }

  nextExpiry(): Promise<number | null> {
    return this.#store.nextExpiry();
  }

  /** The job as the agent receives it, secrets opened (kept in memory only for the delivery). */
  request(job: JobRecord): JobRequest {
    return this.#toRequest(job, this.secrets(job));
  }

  secrets(job: JobRecord): JobSecrets {
    return JSON.parse(this.#box.openText(job.secrets, job.id)) as JobSecrets;
  }

  markDelivered(id: string): Promise<void> {
    return this.#store.markDelivered(id, Date.now());
  }

  setDeliveryError(id: string, error: string | null): Promise<void> {
    return this.#store.setDeliveryError(id, error);
  }

  markRunning(id: string): Promise<boolean> {
    return this.#store.markRunning(id, Date.now());
  }

  recordProgress(id: string, steps: readonly JobStep[], logs: readonly JobLogLine[]): Promise<void> {
    return this.#store.recordProgress(id, steps, logs);
  }

  /** Makes the job final (once); emits `finished`. False when it was final already. */
  async finish(id: string, outcome: { result: JobResult } | { errorCode: string; error: string }): Promise<boolean> {
    const finish =
      'result' in outcome
        ? { state: outcome.result.state, result: outcome.result, errorCode: null, error: outcome.result.error, at: Date.now() }
        : { state: 'failed' as const, result: null, errorCode: outcome.errorCode, error: outcome.error, at: Date.now() };
    if (!(await this.#store.finishJob(id, finish))) return false;
    const job = await this.#store.getJob(id);
    if (job) this.emit('finished', jobView(job));
    return true;
  }

  #toRequest(job: JobRecord, secrets: JobSecrets): JobRequest {
    const { target, volume, policies } = JSON.parse(job.request) as { target: JobRequest['target']; volume?: JobRequest['volume']; policies?: JobRequest['policies'] };
    return {
      id: job.id,
      kind: job.kind,
      node: job.node,
      stack: job.stack,
      target,
      secrets,
      createdAt: job.createdAt,
      expiresAt: job.expiresAt,
      ...(job.intent === null ? {} : { intent: job.intent }),
      ...(volume ? { volume } : {}),
      ...(policies ? { policies } : {}),
    };
  }
}
