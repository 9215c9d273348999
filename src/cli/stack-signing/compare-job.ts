/**
 * The signer's check of one job the hub proposes (issue 13): the exact signed body must be
 * canonical JSON, and every field equal to what the CLI computed itself; the hub-assigned
 * `target.revision` and `target.digest` (an HMAC under a hub key) are checked for form only.
 * Answers the first differing field's path, for the refusal message.
 */
import { canonicalJson } from '../../protocol/intent.ts';
import type { JobKind } from '../../protocol/jobs.ts';

export type ProposedJob = Record<string, unknown>;

/** Parses a proposal's signed body; null unless it is JSON in exactly its canonical form. */
export function parseCanonical(signedBody: string): ProposedJob | null {
  let value: unknown;
  try {
    value = JSON.parse(signedBody);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  try {
    return canonicalJson(value) === signedBody ? (value as ProposedJob) : null;
  } catch {
    return null;
  }
}

/** The first path where `proposed` differs from `expected` (missing or extra keys included), or null. */
export function firstDifference(expected: unknown, proposed: unknown, path: string): string | null {
  if (expected === null || typeof expected !== 'object' || proposed === null || typeof proposed !== 'object') {
    return Object.is(expected, proposed) ? null : path;
  }
  if (Array.isArray(expected) !== Array.isArray(proposed)) return path;
  if (Array.isArray(expected)) {
    const other = proposed as unknown[];
    if (expected.length !== other.length) return path;
    for (let i = 0; i < expected.length; i++) {
      const d = firstDifference(expected[i], other[i], `${path}[${i}]`);
      if (d !== null) return d;
    }
    return null;
  }
  const e = expected as Record<string, unknown>;
  const p = proposed as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(e), ...Object.keys(p)])].sort();
  for (const key of keys) {
    if (e[key] === undefined && p[key] === undefined) continue;
    const d = firstDifference(e[key], p[key], path === '' ? key : `${path}.${key}`);
    if (d !== null) return d;
  }
  return null;
}

const REVISION_FORM = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const DIGEST_FORM = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/**
 * The hub's word on revision and digest, once their form is checked: what the expected job takes
 * for them. Null with the failing field otherwise.
 */
export function hubAssigned(proposed: ProposedJob): { ok: true; revision: number; digest: string } | { ok: false; field: string } {
  const target = proposed.target as Record<string, unknown> | null | undefined;
  if (target === null || typeof target !== 'object') return { ok: false, field: 'target' };
  if (!REVISION_FORM(target.revision)) return { ok: false, field: 'target.revision' };
  if (!DIGEST_FORM(target.digest)) return { ok: false, field: 'target.digest' };
  return { ok: true, revision: target.revision as number, digest: target.digest as string };
}

/** A refusal to sign, naming the field. */
export function refusal(kind: JobKind, node: string, field: string, why = 'differs from what this CLI computed'): string {
  return `refusing to sign the ${kind} job for node ${node}: the hub's ${field} ${why}; nothing was signed`;
}
