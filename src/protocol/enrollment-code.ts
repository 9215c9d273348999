/**
 * Enrollment codes carry the digest of the hub's CA, the way Docker Swarm join tokens do, so an
 * agent can verify the hub on first contact without trusting whoever answers.
 *
 *   DFE1-<64 hex: sha256 of the hub CA>-<32 hex secret>   single-use code for one named node
 *   DFJ1-<64 hex: sha256 of the hub CA>-<32 hex secret>   fleet join token: nodes wait as pending
 */
import { createHash, randomBytes } from 'node:crypto';
import { DockfleetError } from './errors.ts';

export type CodeKind = 'single' | 'join';
const PREFIX: Record<CodeKind, string> = { single: 'DFE1', join: 'DFJ1' };
const CODE_PATTERN = /^(DFE1|DFJ1)-([0-9a-f]{64})-([0-9a-f]{32})$/;

export interface EnrollmentCode {
  kind: CodeKind;
  caDigest: string;
  secret: string;
}

export function mintCode(kind: CodeKind, caDigest: string): { code: string; secretHash: string } {
  const secret = randomBytes(16).toString('hex');
  return { code: `${PREFIX[kind]}-${caDigest}-${secret}`, secretHash: hashSecret(secret) };
}

export function parseCode(code: string): EnrollmentCode {
  const m = CODE_PATTERN.exec(code.trim());
  if (!m) throw new DockfleetError('code_invalid', 'enrollment code is malformed (expected DFE1-… or DFJ1-…)');
  return { kind: m[1] === 'DFJ1' ? 'join' : 'single', caDigest: m[2]!, secret: m[3]! };
}

/** What the hub stores instead of the secret: a code read from its database cannot be replayed. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
