/**
 * The CLI's own record of the last backup-policy set it signed for each node (issue 14 × 13):
 * `~/.dockfleet/signed-policies/<node>.json` (`DOCKFLEET_HOME` stands in for `~/.dockfleet`),
 * 0600 in a 0700 directory. A `volume-policies` job carries the node's whole set; the CLI knows
 * only the policy it is changing, so the other volumes' policies must be the ones it signed last
 * (or `--trust-hub`, which shows them first). Policies hold no secrets.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../../protocol/intent.ts';
import { volumeBackupPolicy, type VolumeBackupPolicy } from '../../protocol/volume-backup.ts';
import { dockfleetHome } from '../intent/operator-key-file.ts';

const record = z.strictObject({
  v: z.literal(1),
  node: z.string(),
  revision: z.number().int().nonnegative(),
  policies: z.array(volumeBackupPolicy),
  signedAt: z.string(),
  key: z.string(),
});
export type SignedPolicies = z.infer<typeof record>;

/** A node name as a file name: Docker-style names pass as they are, anything else is escaped. */
function fileFor(node: string, env: NodeJS.ProcessEnv): string {
  return join(dockfleetHome(env), 'signed-policies', `${encodeURIComponent(node).replace(/^\.+/, (dots) => '%2E'.repeat(dots.length))}.json`);
}

/** The set this CLI signed last for the node, or null (never, or a file that is not one). */
export async function readSignedPolicies(node: string, env: NodeJS.ProcessEnv = process.env): Promise<SignedPolicies | null> {
  let text: string;
  try {
    text = await readFile(fileFor(node, env), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = record.safeParse(JSON.parse(text));
    return parsed.success && parsed.data.node === node ? parsed.data : null;
  } catch {
    return null;
  }
}

export async function recordSignedPolicies(node: string, revision: number, policies: VolumeBackupPolicy[], key: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const file = fileFor(node, env);
  await mkdir(join(dockfleetHome(env), 'signed-policies'), { recursive: true, mode: 0o700 });
  const value: SignedPolicies = { v: 1, node, revision, policies, signedAt: new Date().toISOString(), key };
  await writeFile(file, `${canonicalJson(value)}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
}
