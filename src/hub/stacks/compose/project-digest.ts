/**
 * A deterministic digest of a stack's intent: canonical JSON (object keys sorted at every
 * depth, RFC 8785's idea for the values this project holds: strings, finite numbers, booleans,
 * null, arrays, objects) under a versioned domain prefix, hashed with SHA-256. Equal projects
 * with equal secret digests give equal digests, whatever order their keys were written in.
 */
import { createHash } from 'node:crypto';
import type { StackProject } from '../../../protocol/stacks.ts';
import { canonicalJson } from '../../../protocol/canonical-json.ts';

const DOMAIN = 'dockfleet.stack-project.v1\n';

export { canonicalJson };

/**
 * `secretEnvDigests`: a digest of each secret value (secret env and secret files) by name, as
 * the caller keeps them (e.g. an HMAC under a hub key, so a stored digest does not let anyone
 * test guesses of a weak password); the values themselves never enter this digest.
 */
export function projectDigest(project: StackProject, secretEnvDigests: Record<string, string>): string {
  const body = canonicalJson({ project, secrets: secretEnvDigests });
  return createHash('sha256').update(DOMAIN).update(body).digest('hex');
}
