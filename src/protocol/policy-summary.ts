/**
 * What a node's local policy allows, as the agent reports it to the hub (an inventory message,
 * `{ t: 'policy', summary }`, first on every inventory stream) and the hub shows it in node views
 * (`policy`), so the UI can say per node what it allows and disable what it refuses. Only what
 * the policy itself says: sections on/off, the allow flags, and whether the host requires signed
 * intent (with the fingerprints of the operator keys it lists); never the policy file's path.
 */
import { z } from 'zod';

/** The sections the UI asks about (a subset of the agent's SECTION_NAMES, same spelling). */
export const SUMMARY_SECTIONS = [
  'containers',
  'exec',
  'archive',
  'images',
  'imageExport',
  'build',
  'volumes',
  'networks',
  'distribution',
  'events',
  'plugins',
  'swarm',
  'volumeFiles',
  'ingress',
] as const;
export type SummarySection = (typeof SUMMARY_SECTIONS)[number];

export const policySummary = z.object({
  /** True when the agent runs with a policy file, false with the built-in default policy. */
  custom: z.boolean(),
  sections: z.record(z.enum(SUMMARY_SECTIONS), z.boolean()),
  allow: z.object({
    privileged: z.boolean(),
    /** The directories the policy lists for bind mounts; null = any host path (except / and engine sockets). */
    bindMounts: z.array(z.string().max(4096)).max(256).nullable(),
    bindRoot: z.boolean(),
    dockerSocket: z.boolean(),
    hostNamespaces: z.boolean(),
    devices: z.boolean(),
    capabilities: z.array(z.string().max(64)).max(128),
    remoteBuildContexts: z.boolean(),
  }),
  /**
   * Issue 13: null when the host runs unsigned work; else what needs a signature and the short
   * fingerprints (lib/operator-key-fingerprint.ts) of the operator keys its policy file lists.
   * Optional so a summary from an agent older than this field still parses (read it as unknown).
   */
  signedIntent: z
    .object({
      require: z.enum(['mutations', 'all']),
      operators: z.array(z.string().regex(/^[0-9a-f]{20}$/)).max(1000),
    })
    .nullable()
    .optional(),
});
export type PolicySummary = z.infer<typeof policySummary>;

/** The inventory message that carries it. */
export const policyMessage = z.object({ t: z.literal('policy'), summary: policySummary });
export type PolicyMessage = z.infer<typeof policyMessage>;
