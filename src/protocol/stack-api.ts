/** Bodies of the hub's stack and node-label REST API (v1), shared by the hub and the CLI. */
import { z } from 'zod';
import { nodeNameSchema } from './handshake.ts';
import { healthGate } from './stacks.ts';

/**
 * Docker's recommendation for label keys: lowercase letters and digits, single dots or dashes
 * between them; the prefixes Docker reserves for itself are refused.
 */
export const LABEL_KEY = /^[a-z0-9](?:[a-z0-9]|[.-](?=[a-z0-9]))*$/;
const RESERVED_PREFIXES = ['com.docker.', 'io.docker.', 'org.dockerproject.'];
/** Printable text without control characters. */
const LABEL_VALUE = /^[^\p{Cc}]*$/u;

export const labelKey = z
  .string()
  .min(1)
  .max(128)
  .regex(LABEL_KEY, 'label keys are lowercase letters and digits with single dots or dashes between them')
  .refine((k) => !RESERVED_PREFIXES.some((p) => k.startsWith(p)), 'label keys under com.docker., io.docker. and org.dockerproject. are reserved for Docker');
export const labelValue = z.string().max(256).regex(LABEL_VALUE, 'label values hold no control characters');

export const setNodeLabelsBody = z.strictObject({
  /** A value sets the label; null removes it. */
  labels: z.record(labelKey, labelValue.nullable()).refine((l) => Object.keys(l).length <= 64, 'at most 64 labels per change'),
});

/** Where a stack runs: one node, a list, or every node carrying a label (resolved at deploy time). */
export const stackTarget = z.union([
  z.strictObject({ node: nodeNameSchema }),
  z.strictObject({ nodes: z.array(nodeNameSchema).min(1).max(1000) }),
  z.strictObject({ selector: z.strictObject({ key: labelKey, value: labelValue }) }),
]);
export type StackTarget = z.infer<typeof stackTarget>;

/** `key=value` as the CLI and the API accept a selector. */
export function parseSelector(text: string): { key: string; value: string } | null {
  const at = text.indexOf('=');
  if (at <= 0) return null;
  const parsed = z.strictObject({ key: labelKey, value: labelValue }).safeParse({ key: text.slice(0, at), value: text.slice(at + 1) });
  return parsed.success ? parsed.data : null;
}

const envMap = z.record(
  z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are letters, digits and underscores')
    .max(256),
  z.string().max(65_536),
);

export const deployStackBody = z.strictObject({
  compose: z
    .string()
    .min(1)
    .max(256 * 1024),
  env: envMap.optional(),
  secretEnv: envMap.optional(),
  /** base64 contents by the path written in the compose file (env_file, secrets, configs). */
  files: z.record(z.string().min(1).max(1024), z.string().max(1024 * 1024)).optional(),
  target: z.union([stackTarget, z.strictObject({ selector: z.string() })]),
  parallel: z.number().int().min(1).max(1000).optional(),
  gate: healthGate.partial().optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  /** File every job of the rollout for the operator to sign first (issue 13): the answer's `signing`. */
  sign: z.boolean().optional(),
});
export type DeployStackBody = z.infer<typeof deployStackBody>;

/** What the Compose editor sends as you type: the file and what it is read with, no target. */
export const validateComposeBody = deployStackBody.pick({ compose: true, env: true, secretEnv: true, files: true });
export type ValidateComposeBody = z.infer<typeof validateComposeBody>;

export const rollbackStackBody = z.strictObject({
  to: z.number().int().positive().optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  sign: z.boolean().optional(),
});

/** `POST /api/v1/jobs/ID/intent`: the operator's signed intent for a job awaiting one. */
export const jobIntentBody = z.strictObject({
  intent: z
    .string()
    .min(1)
    .max(16 * 1024),
});

/** `POST /api/v1/jobs/ID/decline`: the operator's CLI refused to sign the job, and why. */
export const jobDeclineBody = z.strictObject({ reason: z.string().min(1).max(1_000) });

export const STACK_ROLLOUT_STATES = ['running', 'succeeded', 'failed'] as const;

export interface StackNodeView {
  node: string;
  revision: number;
  status: string;
  drift: Array<{ service: string | null; container: string | null; kind: string; detail: string }>;
  updatedAt: string;
}

export interface StackListItem {
  name: string;
  revision: number;
  nodes: Array<{ node: string; revision: number; status: string }>;
}

export interface RolloutView {
  id: string;
  stack: string;
  kind: 'deploy' | 'rollback' | 'remove';
  revision: number;
  nodes: string[];
  parallel: number;
  state: (typeof STACK_ROLLOUT_STATES)[number];
  stoppedAtNode: string | null;
  error: string | null;
  jobs: string[];
  createdBy: string;
  createdAt: string;
  finishedAt: string | null;
}

/** What a deploy, rollback or removal answers (202): the jobs filed so far, the last one last. */
export interface RolloutStarted {
  stack: string;
  revision: number;
  rollout: string;
  jobs: string[];
  /** With `sign`: every job of the rollout, awaiting its operator's signature. */
  signing?: SigningProposal;
}

/**
 * A signed rollout's proposal: its order and every job as the host will check it. The signer
 * recomputes what it can of each `signedBody` (jobSignedBody) and signs only what it asked for.
 */
export interface SigningProposal {
  kind: 'deploy' | 'rollback' | 'remove';
  parallel: number;
  nodes: string[];
  jobs: Array<{ id: string; node: string; signedBody: string }>;
}

// Answers of the job and stack routes, as the OpenAPI document shows them (times as ISO strings).
const iso = z.string();
export const apiJobView = z.object({
  id: z.string(),
  kind: z.enum(['deploy', 'rollback', 'remove', 'volume-backup', 'volume-restore', 'volume-snapshots', 'volume-policies']),
  node: z.string(),
  stack: z.string(),
  state: z.enum(['awaiting-signature', 'queued', 'running', 'succeeded', 'failed']),
  createdAt: iso,
  finishedAt: iso.nullable(),
  revision: z.number().int().nullable(),
  rolledBack: z.boolean(),
  error: z.string().nullable(),
  errorCode: z.string().nullable(),
});
export const apiJobDetailView = apiJobView.extend({
  createdBy: z.string(),
  startedAt: iso.nullable(),
  expiresAt: iso,
  attempts: z.number().int(),
  deliveryError: z.string().nullable(),
  result: z.looseObject({}).nullable(),
  steps: z.array(z.looseObject({ name: z.string(), startedAt: iso.nullable(), finishedAt: iso.nullable() })),
  logs: z.array(z.object({ at: iso.nullable(), line: z.string() })),
  logsDropped: z.number().int(),
});
const signingJob = z.object({ id: z.string(), node: z.string(), signedBody: z.string() });
/** A filed job as the volume routes answer it; with `sign`, the bytes its host will check. */
export const filedJobAnswer = apiJobView.extend({ signing: z.object({ jobs: z.array(signingJob) }).optional() });
const rolloutKind = z.enum(['deploy', 'rollback', 'remove']);
export const rolloutStartedView = z.object({
  stack: z.string(),
  revision: z.number().int(),
  rollout: z.string(),
  jobs: z.array(z.string()),
  signing: z.object({ kind: rolloutKind, parallel: z.number().int(), nodes: z.array(z.string()), jobs: z.array(signingJob) }).optional(),
});
export const rolloutViewSchema = z.object({
  id: z.string(),
  stack: z.string(),
  kind: rolloutKind,
  revision: z.number().int(),
  nodes: z.array(z.string()),
  parallel: z.number().int(),
  state: z.enum(STACK_ROLLOUT_STATES),
  stoppedAtNode: z.string().nullable(),
  error: z.string().nullable(),
  jobs: z.array(z.string()),
  createdBy: z.string(),
  createdAt: iso,
  finishedAt: iso.nullable(),
});
export const stackListItemView = z.object({ name: z.string(), revision: z.number().int(), nodes: z.array(z.object({ node: z.string(), revision: z.number().int(), status: z.string() })) });
export const stackRevisionSummary = z.looseObject({
  revision: z.number().int(),
  createdAt: iso,
  createdBy: z.string(),
  digest: z.string(),
  parallel: z.number().int(),
  services: z.array(z.string()),
  env: z.record(z.string(), z.string()),
  secretEnv: z.array(z.string()),
  secretFiles: z.array(z.string()),
  files: z.array(z.string()),
});
export const stackRevisionDetail = stackRevisionSummary.extend({ compose: z.string(), project: z.looseObject({}) });
export const stackDetailView = z.object({
  name: z.string(),
  revision: z.number().int(),
  createdAt: iso.nullable(),
  removedAt: iso.nullable(),
  drifted: z.boolean(),
  nodes: z.array(
    z.object({
      node: z.string(),
      revision: z.number().int(),
      status: z.string(),
      updatedAt: iso,
      drift: z.array(z.object({ service: z.string().nullable(), container: z.string().nullable(), kind: z.string(), detail: z.string() })),
    }),
  ),
  rollouts: z.array(rolloutViewSchema),
});
export const composeCheck = z.object({ errors: z.array(z.object({ path: z.string(), line: z.number().int().nullable(), message: z.string() })) });
