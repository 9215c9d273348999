/**
 * Secrets the hub keeps for a node's volume backups and sends, sealed in a volume job's secrets,
 * so backups run unattended (issue 14): the hub-managed repository password (RESTIC_PASSWORD)
 * and, for a `volume-policies` job, each scheduled policy's environment for a URL repository.
 * They travel as one secret file (base64 JSON) under HUB_KEPT_FILE.
 *
 * Signed hosts: an operator signs a job without seeing these (the hub never shows them), so a
 * volume job's signed body leaves this one file out (signableJob); it covers everything else,
 * the repository included. The agent takes from it only RESTIC_PASSWORD (used under hub-managed
 * custody alone) and a storage backend's credential variables, never anything that runs code.
 */
import { z } from 'zod';
import { ESCROW_FILES } from './escrow-files.ts';

export const HUB_KEPT_FILE = 'dockfleet-hub-kept';

const envName = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/);
const env = z.record(envName, z.string().max(8_192));

export const hubKeptSecrets = z.strictObject({
  /** For a volume-backup, -restore or -snapshots job. */
  env: env.default({}),
  /** For a volume-policies job: each policy's environment, by volume. */
  volumes: z.record(z.string().max(255), env).default({}),
});
export type HubKeptSecrets = z.infer<typeof hubKeptSecrets>;

/** The secret file's value (base64 JSON, as job secret files are). */
export function encodeHubKept(kept: HubKeptSecrets): string {
  return Buffer.from(JSON.stringify(kept), 'utf8').toString('base64');
}

/** The kept secrets in a job's secret files; empty when there are none; null when malformed. */
export function decodeHubKept(files: Readonly<Record<string, string>>): HubKeptSecrets | null {
  const raw = files[HUB_KEPT_FILE];
  if (raw === undefined) return { env: {}, volumes: {} };
  try {
    const parsed = hubKeptSecrets.safeParse(JSON.parse(Buffer.from(raw, 'base64').toString('utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The job as its signature covers it: a volume job less the hub-kept file and a rebuild's escrow
 * files (escrow-files.ts: the wrapped key the hub holds, and the recovery code, which no signer
 * is shown). Other kinds unchanged.
 */
export function signableJob<T extends { kind: string; secrets?: { env: Record<string, string>; files: Record<string, string> } }>(job: T): T {
  const unsigned = [HUB_KEPT_FILE, ESCROW_FILES.wrappedKey, ESCROW_FILES.recoveryCode];
  if (!job.kind.startsWith('volume-') || !job.secrets || !unsigned.some((name) => name in job.secrets!.files)) return job;
  const files = Object.fromEntries(Object.entries(job.secrets.files).filter(([name]) => !unsigned.includes(name)));
  return { ...job, secrets: { env: job.secrets.env, files } };
}
