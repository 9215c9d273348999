/**
 * Agent releases (issue 16): a release is a gzipped tarball of the agent's code (src, bin,
 * package.json, lockfile) and a signature over a small manifest naming it (version, SHA-256 and
 * size of the tarball). The signing key is the fleet's release key, kept by whoever builds releases;
 * agents pin its public half at enrollment, so a hub can offer releases but never make one.
 * Signed bytes: a domain-separation line, then the manifest in canonical JSON (no re-serialisation
 * of anything foreign: the verifier rebuilds the bytes from the parsed fields it then relies on).
 */
import { z } from 'zod';
import { canonicalJson } from './canonical-json.ts';

export const RELEASE_SIGNATURE_VERSION = 1;
const SIGNING_DOMAIN = 'dockfleet-agent-release-v1\n';
/** Release keys travel in the operator-key form: `ed25519:<base64url of the raw public key>`. */
export const releaseKeySchema = z.string().regex(/^ed25519:[A-Za-z0-9_-]{43}$/, 'a release key looks like ed25519:<43 base64url characters>');
/** Versions name directories on hosts: a plain, bounded semver-like word, never a path. */
export const releaseVersionSchema = z.string().regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]{1,40})?$/, 'versions look like 1.2.3 or 1.2.3-rc.1');
/** The largest release package a hub stores and an agent accepts. */
export const MAX_RELEASE_BYTES = 64 * 1024 * 1024;

export const releaseManifest = z.object({
  name: z.literal('dockfleet'),
  version: releaseVersionSchema,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().positive().max(MAX_RELEASE_BYTES),
});
export type ReleaseManifest = z.infer<typeof releaseManifest>;

/** What `dockfleet release sign` writes beside the package (PACKAGE.tgz.sig). */
export const releaseSignature = z.object({
  v: z.literal(RELEASE_SIGNATURE_VERSION),
  manifest: releaseManifest,
  key: releaseKeySchema,
  sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
});
export type ReleaseSignature = z.infer<typeof releaseSignature>;

export function releaseSigningBytes(manifest: ReleaseManifest): Buffer {
  const { name, version, sha256, size } = manifest;
  return Buffer.from(`${SIGNING_DOMAIN}${canonicalJson({ name, version, sha256, size })}`);
}

/** POST /api/v1/releases: the package (base64) and its signature document. */
export const addReleaseBody = z.object({
  package: z
    .string()
    .min(1)
    .max(Math.ceil((MAX_RELEASE_BYTES * 4) / 3) + 4),
  signature: releaseSignature,
});
export const releaseView = z.object({ version: releaseVersionSchema, sha256: z.string(), size: z.number().int(), addedAt: z.string() });
export type ReleaseView = z.infer<typeof releaseView>;

/** POST /api/v1/agent-upgrades: roll VERSION out to the chosen nodes, N at a time. */
export const startUpgradeBody = z.object({
  to: releaseVersionSchema,
  parallel: z.number().int().min(1).max(1000).optional(),
  /** Node names; all online nodes when left out. */
  nodes: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/))
    .min(1)
    .max(10_000)
    .optional(),
});
export const UPGRADE_NODE_STATES = ['waiting', 'sending', 'restarting', 'succeeded', 'failed', 'skipped'] as const;
export const upgradeNodeView = z.object({
  node: z.string(),
  wave: z.number().int(),
  state: z.enum(UPGRADE_NODE_STATES),
  from: z.string().nullable(),
  reason: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export const rolloutView = z.object({
  id: z.string(),
  to: releaseVersionSchema,
  parallel: z.number().int(),
  state: z.enum(['running', 'succeeded', 'failed']),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  nodes: z.array(upgradeNodeView),
});
export type RolloutView = z.infer<typeof rolloutView>;

/** The agent's upgrade endpoints on its channel (hub-initiated, like every request on it). */
export const AGENT_UPGRADE_PATH = '/_dockfleet/v1/agent/upgrade';
export const AGENT_UPGRADE_RESULT_PATH = '/_dockfleet/v1/agent/upgrade/result';
/** Header carrying the signature document (base64url JSON) beside the package body. */
export const RELEASE_SIGNATURE_HEADER = 'x-dockfleet-release-signature';

/** What the launcher leaves in <state>/upgrade-result.json after trying a version. */
export const upgradeResult = z.object({
  from: z.string(),
  to: z.string(),
  ok: z.boolean(),
  reason: z.string().max(500).nullable(),
  at: z.number().int(),
});
export type UpgradeResult = z.infer<typeof upgradeResult>;
