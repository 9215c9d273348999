/**
 * Why an ACME step failed, in words an operator can act on and nothing secret: the ACME
 * server's problem document (RFC 7807 / RFC 8555 §6.7: its type and detail), or the network
 * error that kept us from reaching it. The routes view shows `message` as the host's
 * certificate error; challenge tokens are cut out of it before it is made.
 */
export type AcmeFailureKind = 'problem' | 'unreachable' | 'protocol' | 'timeout';

const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';

export class AcmeFailure extends Error {
  readonly kind: AcmeFailureKind;
  /** The problem type without the ACME prefix (e.g. `badNonce`, `connection`), or null. */
  readonly problemType: string | null;

  constructor(kind: AcmeFailureKind, message: string, problemType: string | null = null) {
    super(message);
    this.name = 'AcmeFailure';
    this.kind = kind;
    this.problemType = problemType;
  }

  /** From a problem document (the body of an error answer, or a challenge's `error`). */
  static fromProblem(problem: unknown, status: number | null, context: string): AcmeFailure {
    const doc = (typeof problem === 'object' && problem !== null ? problem : {}) as { type?: unknown; detail?: unknown; subproblems?: unknown };
    const rawType = typeof doc.type === 'string' ? doc.type : null;
    const type = rawType?.startsWith(ACME_ERROR_PREFIX) ? rawType.slice(ACME_ERROR_PREFIX.length) : rawType;
    const detail = typeof doc.detail === 'string' ? doc.detail : `HTTP ${status ?? '?'}`;
    const subs = Array.isArray(doc.subproblems) ? doc.subproblems.map((s: { detail?: unknown }) => (typeof s?.detail === 'string' ? s.detail : '')).filter(Boolean) : [];
    const text = [detail, ...subs].join('; ').slice(0, 500);
    return new AcmeFailure('problem', `ACME server refused ${context}: ${type ?? 'error'}: ${text}`, type);
  }

  /** A failure with these strings (e.g. challenge tokens) replaced by `…`. */
  redacted(secrets: Iterable<string>): AcmeFailure {
    let message = this.message;
    for (const s of secrets) if (s.length >= 8) message = message.split(s).join('…');
    return new AcmeFailure(this.kind, message, this.problemType);
  }
}

/** Any error as an AcmeFailure (an unexpected one keeps its message, which never holds a key). */
export function asAcmeFailure(err: unknown): AcmeFailure {
  if (err instanceof AcmeFailure) return err;
  return new AcmeFailure('protocol', `ACME order failed: ${err instanceof Error ? err.message : String(err)}`);
}
