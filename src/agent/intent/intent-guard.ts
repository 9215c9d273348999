/**
 * Signed intent on this host, in one place for the Docker proxy, the jobs handler and the
 * volume-file browser: whether a call needs a signature (the local policy's `signedIntent`),
 * the verifier with its nonce store in the state dir, the refusal's Docker-format text, and the
 * host audit entry for a refusal. A host without `signedIntent` gets a guard that requires
 * nothing (a sealed body sent to it anyway is still unsealed, by the key the intent names).
 */
import type { Http2ServerRequest } from 'node:http2';
import { ACTOR_HEADER, AUDIT_REF_HEADER, INTENT_BODY_HEADER, INTENT_HEADER, SEALED_BODY, type IntentClaims } from '../../protocol/intent.ts';
import type { Logger } from '../../lib/logger.ts';
import type { SignedIntentPolicy } from '../policy/policy-file.ts';
import type { HostAuditLog } from '../audit/host-audit.ts';
import { IntentVerifier, type IntentCheck, type IntentTarget } from './intent-verifier.ts';
import { NonceStore } from './nonce-store.ts';

export type CallKind = 'docker' | 'job' | 'volumeFiles';

/** The hub's hints for the host's log (never used for access). */
export interface CallHints {
  user?: string;
  ref?: string;
}

export class IntentGuard {
  readonly node: string;
  readonly policy: SignedIntentPolicy | null;
  readonly #verifier: IntentVerifier | null;
  readonly #nonces: NonceStore | null;
  readonly #audit: HostAuditLog | null;
  readonly #log: Logger;

  constructor(opts: { node: string; policy: SignedIntentPolicy | null; nonces: NonceStore | null; audit?: HostAuditLog | null; log: Logger }) {
    this.node = opts.node;
    this.policy = opts.policy;
    this.#nonces = opts.nonces;
    this.#verifier = opts.policy && opts.nonces ? new IntentVerifier(opts.policy, opts.nonces) : null;
    this.#audit = opts.audit ?? null;
    this.#log = opts.log;
  }

  /** Opens the nonce store in `stateDir` when the policy asks for signatures. */
  static open(opts: { node: string; policy: SignedIntentPolicy | null; stateDir: string; audit?: HostAuditLog | null; log: Logger }): IntentGuard {
    const nonces = opts.policy ? NonceStore.open(opts.stateDir) : null;
    return new IntentGuard({ ...opts, nonces });
  }

  get audit(): HostAuditLog | null {
    return this.#audit;
  }

  /** Whether this call must carry a valid signature on this host. */
  requires(kind: CallKind, method: string): boolean {
    if (!this.policy) return false;
    if (this.policy.require === 'all') return true;
    if (kind === 'job') return true;
    return method !== 'GET' && method !== 'HEAD';
  }

  check(headerValue: string | string[] | undefined, target: Omit<IntentTarget, 'node'>): IntentCheck {
    if (!this.#verifier) return { ok: false, reason: 'this host lists no operator keys' };
    return this.#verifier.check(headerValue, { ...target, node: this.node });
  }

  /** Records a refusal on the host (its log and its audit log). */
  refused(what: { op: string; target: string; reason: string; status?: number; hints?: CallHints; claims?: IntentClaims }): void {
    this.#log.warn({ op: what.op.split('?')[0], reason: what.reason }, 'call refused: signed intent required');
    this.#audit?.append({
      op: what.op,
      target: what.target,
      result: 'refused',
      status: what.status ?? 403,
      reason: what.reason,
      ...hintFields(what.hints, what.claims),
    });
  }

  close(): void {
    this.#nonces?.close();
  }
}

/** The operation a volume-file call signs: method, and the agent's path and query as received. */
export function volumeFilesOp(method: string, pathAndQuery: string): string {
  return `volume-files ${method.toUpperCase()} ${pathAndQuery}`;
}

/** The Docker-format message of a refusal for want of a valid signature. */
export function intentRefusalText(node: string, reason: string): string {
  return `dockfleet: this host requires signed intent: ${reason}. Use \`dockfleet connect ${node} --socket PATH\` or the web UI, which sign each call with your operator key.`;
}

/** The intent header, and whether the body arrives sealed, as the hub forwarded them. */
export function intentHeaders(req: Http2ServerRequest): { intent: string | string[] | undefined; sealed: boolean } {
  return { intent: req.headers[INTENT_HEADER], sealed: req.headers[INTENT_BODY_HEADER] === SEALED_BODY };
}

/** The hub's hints from a request's headers. */
export function callHints(req: Http2ServerRequest): CallHints {
  const user = req.headers[ACTOR_HEADER];
  const ref = req.headers[AUDIT_REF_HEADER];
  return {
    ...(typeof user === 'string' && user !== '' ? { user: user.slice(0, 128) } : {}),
    ...(typeof ref === 'string' && ref !== '' ? { ref: ref.slice(0, 64) } : {}),
  };
}

/** The audit entry's user, key and ref: the signer's key and name when signed, else the hub's word. */
export function hintFields(hints: CallHints | undefined, claims: IntentClaims | undefined): { user?: string; key?: string; ref?: string } {
  const user = hints?.user ?? claims?.user;
  return {
    ...(user !== undefined ? { user } : {}),
    ...(claims ? { key: claims.key } : {}),
    ...(hints?.ref !== undefined ? { ref: hints.ref } : {}),
  };
}
