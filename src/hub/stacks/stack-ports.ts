/**
 * What the stack service needs from its neighbours, as small interfaces: the job queue
 * (hub/jobs/), the secret box (hub/secret-box.ts) and the Compose front door (compose/).
 * build-hub.ts hands the real ones in; tests may hand in their own.
 */
import type { JobKind, JobState } from '../../protocol/jobs.ts';
import type { StackProject, StackRevision } from '../../protocol/stacks.ts';
import type { ComposeInput, ComposeResult } from './compose/parse-compose.ts';

export interface StackJobView {
  id: string;
  kind: JobKind;
  node: string;
  stack: string;
  state: JobState;
  /** When final: the revision the stack is on after the job. */
  revision: number | null;
  /** A failed deploy whose previous revision the agent put back. */
  rolledBack: boolean;
  error: string | null;
}

export interface FileJobInput {
  kind: JobKind;
  node: string;
  stack: string;
  target: StackRevision | null;
  secrets: { env: Record<string, string>; files: Record<string, string> };
  idempotencyKey: string;
  createdBy: string;
  expiresInMs?: number;
  /** Filed for the operator to sign (issue 13); `held` until the rollout reaches its wave. */
  signing?: { held: boolean };
}

export interface StackJobs {
  file(input: FileJobInput): Promise<StackJobView>;
  /** Resolves when the job is final (succeeded|failed). */
  wait(id: string, signal?: AbortSignal): Promise<StackJobView>;
  /** The rollout reached the job: a held signed job may go once signed (a no-op otherwise). */
  release(id: string): Promise<void>;
  /** The exact bytes the host will check a signed job's intent against. */
  signedBody(id: string): Promise<string>;
  /**
   * A rollout stopped before these jobs' turn: those still held (filed up front for signing)
   * fail now with `reason`, rather than wait for a deadline. Returns how many.
   */
  abandonHeld(idempotencyKeys: readonly string[], reason: string): Promise<number>;
}

/** Seals text with the hub's key (kept outside the database), bound to `context`, and opens it
 * again; `digest` is a keyed hash under a key derived from it (hub/secret-box.ts). */
export interface SecretSealer {
  seal(plain: string, context: string): string;
  openText(sealed: string, context: string): string;
  digest(data: string): string;
}

export interface ComposeFrontDoor {
  parse(input: ComposeInput): ComposeResult;
  digest(project: StackProject, secretEnvDigests: Record<string, string>): string;
}
