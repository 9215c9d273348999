/**
 * Jobs: durable work the hub files for one node and the agent carries out exactly once.
 *
 * Delivery is at least once: the hub opens `POST JOBS_PATH` with the job as its JSON body on
 * the agent's channel, and keeps doing so (after a reconnect, after its own restart) until it
 * holds the job's final result. The agent answers every delivery with an NDJSON stream of
 * `jobEvent`s. Its ledger (a durable record in its state dir) makes the rest exactly once: a job
 * it has finished is answered at once with the recorded result; a job it is running is joined;
 * a job it started and lost to a crash is finished or rolled back when the agent starts again,
 * before anything else, and then answered from the ledger.
 */
import { z } from 'zod';
import { canonicalJson } from './intent.ts';
import { STACK_NAME, stackRevision } from './stacks.ts';
import { volumeJobOutput, volumeJobSpec, volumePoliciesSpec } from './volume-backup.ts';
import { signableJob } from './hub-kept-secrets.ts';

export const JOBS_PATH = '/_dockfleet/v1/jobs';
export const JOB_KINDS = ['deploy', 'rollback', 'remove', 'volume-backup', 'volume-restore', 'volume-snapshots', 'volume-policies', 'agent-upgrade'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
/** `awaiting-signature`: filed for a signed rollout, not delivered until its operator's intent arrives (issue 13). */
export const JOB_STATES = ['awaiting-signature', 'queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const JOB_ID = /^job_[0-9a-z]{20,40}$/;

/** The job as the agent receives it. Secret values travel here, never inside the project. */
export const jobRequest = z.strictObject({
  id: z.string().regex(JOB_ID),
  kind: z.enum(JOB_KINDS),
  node: z.string(),
  /** '' for volume jobs (they name their volume in `volume`). */
  stack: z.union([z.string().regex(STACK_NAME), z.literal('')]),
  /** deploy: the revision to apply; rollback: the revision to return to (the agent's own
   * snapshot when it holds it, else this); remove: null. */
  target: stackRevision.nullable(),
  /** Secret environment values and secret files (base64), by name. Never logged or stored in plaintext. */
  secrets: z.strictObject({ env: z.record(z.string(), z.string()), files: z.record(z.string(), z.string()) }),
  createdAt: z.number(),
  /** After this the agent refuses to start it (it may still report one it already ran). */
  expiresAt: z.number(),
  /** The operator's signed intent (op `job <kind>`, body jobSignedBody), for hosts that require one. */
  intent: z
    .string()
    .max(16 * 1024)
    .optional(),
  /** volume-backup, volume-restore, volume-snapshots: which volume, which repository (volume-backup.ts). */
  volume: volumeJobSpec.optional(),
  /** volume-policies: the node's whole set of backup policies (volume-backup.ts). */
  policies: volumePoliciesSpec.optional(),
});
export type JobRequest = z.infer<typeof jobRequest>;

/**
 * What a job's signed intent covers as its body: canonical JSON of the job without the fields the
 * hub sets or the signature itself (id, intent, createdAt, expiresAt), and a volume job's
 * hub-kept secret file (hub-kept-secrets.ts). The CLI signs
 * `sha256:` of these bytes; the host computes them again from what it received.
 */
export function jobSignedBody(job: Omit<JobRequest, 'id' | 'createdAt' | 'expiresAt'> & Partial<Pick<JobRequest, 'id' | 'createdAt' | 'expiresAt'>>): string {
  const { id: _id, intent: _intent, createdAt: _created, expiresAt: _expires, ...signed } = job;
  return canonicalJson(signableJob(signed));
}

export const jobStep = z.strictObject({
  name: z.string().max(200),
  state: z.enum(['running', 'succeeded', 'failed', 'skipped']),
  startedAt: z.number(),
  finishedAt: z.number().nullable(),
});
export type JobStep = z.infer<typeof jobStep>;

export const jobResult = z.strictObject({
  state: z.enum(['succeeded', 'failed']),
  /** Why it failed, for people: the refusing policy, the failing service and its last log lines. */
  error: z.string().max(8_000).nullable(),
  /** The revision the stack is on after the job (the old one when a deploy was rolled back). */
  revision: z.number().int().nonnegative(),
  rolledBack: z.boolean(),
  startedAt: z.number(),
  finishedAt: z.number(),
  /** What a volume job did (its snapshot, the snapshots listed, an escrowed key). */
  volume: volumeJobOutput.optional(),
});
export type JobResult = z.infer<typeof jobResult>;

/** One line of the agent's answer to a delivery. */
export const jobEvent = z.discriminatedUnion('t', [
  /** The ledger has the job: `running` (started now or earlier), or already `done`. */
  z.strictObject({ t: z.literal('accepted'), at: z.number() }),
  z.strictObject({ t: z.literal('step'), step: jobStep }),
  z.strictObject({ t: z.literal('log'), at: z.number(), line: z.string().max(4_000) }),
  z.strictObject({ t: z.literal('done'), result: jobResult }),
  /** Refused before it started (expired, malformed, for another node); final. */
  z.strictObject({ t: z.literal('refused'), code: z.string(), message: z.string().max(2_000) }),
]);
export type JobEvent = z.infer<typeof jobEvent>;
