/**
 * The files of a self-update in the agent's state dir, shared by the running agent (which stages a
 * release) and its launcher (which switches to it and back):
 *   release-key.pub       the release key pinned at enrollment (never replaced afterwards)
 *   versions/<v>/         installed releases, each beside the others
 *   current.json          {version}: the release the launcher runs (absent: the installed checkout)
 *   upgrade.json          {from, to, trialMs}: a switch asked for and not yet settled
 *   upgrade-result.json   how the last switch ended ({from, to, ok, reason, at})
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import { releaseKeySchema, releaseVersionSchema, upgradeResult, type UpgradeResult } from '../../protocol/releases.ts';

export const RELEASE_KEY_FILE = 'release-key.pub';
export const VERSIONS_DIR = 'versions';
const CURRENT_FILE = 'current.json';
const UPGRADE_FILE = 'upgrade.json';
const RESULT_FILE = 'upgrade-result.json';

export const pendingUpgrade = z.object({ from: z.string(), to: releaseVersionSchema, trialMs: z.number().int().positive() });
export type PendingUpgrade = z.infer<typeof pendingUpgrade>;

async function readJson<T>(path: string, schema: z.ZodType<T>): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export class UpgradeFiles {
  readonly stateDir: string;
  constructor(stateDir: string) {
    this.stateDir = stateDir;
  }

  versionDir(version: string): string {
    return join(this.stateDir, VERSIONS_DIR, version);
  }

  /** The pinned release key, or null when this agent was enrolled without one. */
  async releaseKey(): Promise<string | null> {
    try {
      const text = (await readFile(join(this.stateDir, RELEASE_KEY_FILE), 'utf8')).trim();
      return releaseKeySchema.safeParse(text).success ? text : null;
    } catch {
      return null;
    }
  }

  async pinReleaseKey(key: string): Promise<void> {
    await writeFileDurably(join(this.stateDir, RELEASE_KEY_FILE), `${key}\n`, 0o600);
  }

  async current(): Promise<string | null> {
    return (await readJson(join(this.stateDir, CURRENT_FILE), z.object({ version: releaseVersionSchema })))?.version ?? null;
  }

  /** null: run the installed checkout. */
  async setCurrent(version: string | null): Promise<void> {
    await writeFileDurably(join(this.stateDir, CURRENT_FILE), `${JSON.stringify({ version })}\n`);
  }

  pending(): Promise<PendingUpgrade | null> {
    return readJson(join(this.stateDir, UPGRADE_FILE), pendingUpgrade);
  }

  async setPending(upgrade: PendingUpgrade | null): Promise<void> {
    await writeFileDurably(join(this.stateDir, UPGRADE_FILE), upgrade === null ? '{}\n' : `${JSON.stringify(upgrade)}\n`);
  }

  result(): Promise<UpgradeResult | null> {
    return readJson(join(this.stateDir, RESULT_FILE), upgradeResult);
  }

  async setResult(result: UpgradeResult): Promise<void> {
    await writeFileDurably(join(this.stateDir, RESULT_FILE), `${JSON.stringify(result)}\n`);
  }
}
