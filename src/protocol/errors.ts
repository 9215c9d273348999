/**
 * The one registry of error codes. Every error that crosses a boundary (REST, gateway close
 * frames, CLI output) carries one of these codes. Codes are never reused or renamed; tests
 * assert codes, not messages.
 */
import { z } from 'zod';
export const ERROR_CODES = {
  bad_request: { status: 400, retryable: false },
  validation_failed: { status: 400, retryable: false },
  unauthenticated: { status: 401, retryable: false },
  forbidden: { status: 403, retryable: false },
  not_found: { status: 404, retryable: false },
  node_not_found: { status: 404, retryable: false },
  name_taken: { status: 409, retryable: false },
  invalid_state: { status: 409, retryable: false },
  code_invalid: { status: 401, retryable: false },
  code_expired: { status: 401, retryable: false },
  code_used: { status: 401, retryable: false },
  /** First-run setup without the hub machine's one-time setup code, or with a wrong one. */
  setup_code_invalid: { status: 401, retryable: false },
  payload_too_large: { status: 413, retryable: false },
  rate_limited: { status: 429, retryable: true },
  node_offline: { status: 502, retryable: true },
  node_timeout: { status: 504, retryable: true },
  engine_unavailable: { status: 502, retryable: true },
  hub_unreachable: { status: 503, retryable: true },
  /** Hub replicas: the bus that says which replica holds a node is down, so a node not held here cannot be reached now. */
  bus_unavailable: { status: 503, retryable: true },
  hub_untrusted: { status: 495, retryable: false },
  node_revoked: { status: 403, retryable: false },
  node_pending: { status: 403, retryable: true },
  key_retired: { status: 401, retryable: false },
  protocol_error: { status: 400, retryable: false },
  handshake_timeout: { status: 408, retryable: true },
  body_stalled: { status: 408, retryable: true },
  replaced: { status: 409, retryable: true },
  path_refused: { status: 403, retryable: false },
  conflict: { status: 409, retryable: false },
  length_required: { status: 411, retryable: false },
  insufficient_storage: { status: 507, retryable: true },
  state_corrupt: { status: 500, retryable: false },
  /** The hub's own storage (its audit log) cannot be written: changes are refused, reads go on. */
  storage_full: { status: 507, retryable: true },
  /** The hub's database (PostgreSQL) cannot be reached: changes that need it are refused, reads from memory go on. */
  store_unavailable: { status: 503, retryable: true },
  /** One user holds as many concurrent Docker calls and streams as a hub allows. */
  too_many_streams: { status: 429, retryable: true },
  /** A queued job whose node did not take it before its expiry (default 24 h). */
  job_expired: { status: 410, retryable: false },
  /** An idempotency key already names a job for another node, stack or kind. */
  idempotency_conflict: { status: 409, retryable: false },
  /** A job delivered to an agent that is not the job's node (the agent refuses it, unrun). */
  job_misdirected: { status: 421, retryable: false },
  /** A stack already has a rollout running (deploy, rollback or removal): one at a time per stack. */
  rollout_in_progress: { status: 409, retryable: true },
  /** A release whose signature does not verify against the fleet's release key (issue 16). */
  release_unsigned: { status: 422, retryable: false },
  /** A feature that needs the hub started with --release-key. */
  release_key_missing: { status: 409, retryable: false },
  /** The hub's master key (secrets at rest) was not found, and its data directory holds secrets sealed under one. */
  master_key_missing: { status: 500, retryable: false },
  /** A master key file readable by group or others, of the wrong size, or inside the data directory: the hub will not use it. */
  master_key_unsafe: { status: 500, retryable: false },
  /** The master key given is not the one this data directory's secrets were sealed under (or two different keys were found). */
  master_key_mismatch: { status: 500, retryable: false },
  /** A hub backup archive that the passphrase or identity given does not open. */
  backup_key_wrong: { status: 401, retryable: false },
  /** A hub backup archive that is damaged, truncated, tampered with, or not a dockfleet backup at all. */
  backup_damaged: { status: 400, retryable: false },
  /** A hub backup archive from a newer dockfleet (its format or database schema is unknown here). */
  backup_too_new: { status: 400, retryable: false },
  internal: { status: 500, retryable: true },
} as const satisfies Record<string, { status: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The single error class used across dockfleet. */
export class DockfleetError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DockfleetError';
    this.code = code;
  }
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
  toJSON(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Every REST error answer (4xx, 5xx): `{error: {code, message}}`; a refused Compose file adds each problem. */
export const errorAnswer = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    errors: z.array(z.object({ path: z.string(), line: z.number().int().nullable(), message: z.string() })).optional(),
  }),
});

/** Turns anything thrown into a DockfleetError at an edge; unknown errors become `internal`
 * with a generic message so internals (paths, secrets) never leak to a caller. */
export function toDockfleetError(err: unknown): DockfleetError {
  if (err instanceof DockfleetError) return err;
  return new DockfleetError('internal', 'internal error', { cause: err });
}
