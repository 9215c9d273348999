/**
 * The files of a self-update in the agent's state dir, shared by the running agent (which stages a
 * release) and its launcher (which switches to it and back):
 *   release-key.pub       the release key pinned at enrollment (never replaced afterwards)
 *   versions/<v>/         installed releases, each beside the others
 *   current.json          {version, previous}: the release the launcher runs (absent or null: the
 *                         installed checkout) and the one it ran before (the fallback, kept by pruning)
 *   upgrade.json          {from, to, trialMs, fromPrevious}: a switch asked for and not yet settled
 *   upgrade-result.json   how the last switch ended ({from, to, ok, reason, at})
 */
import { readFile, readdir, realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileDurably } from '../../lib/write-file-durably.ts';
import { releaseKeySchema, releaseVersionSchema, upgradeResult, type UpgradeResult } from '../../protocol/releases.ts';

export const RELEASE_KEY_FILE = 'release-key.pub';
export const VERSIONS_DIR = 'versions';
const CURRENT_FILE = 'current.json';
const UPGRADE_FILE = 'upgrade.json';
const RESULT_FILE = 'upgrade-result.json';

/** `fromPrevious` is added by the launcher when it switches: what `from` had as its fallback. */
export const pendingUpgrade = z.object({
  from: z.string(),
  to: releaseVersionSchema,
  trialMs: z.number().int().positive(),
  fromPrevious: z.string().nullable().optional(),
});
export type PendingUpgrade = z.infer<typeof pendingUpgrade>;

const currentRecord = z.object({ version: releaseVersionSchema.nullable(), previous: z.string().nullable().optional() });
export interface CurrentRecord {
  /** null: the installed checkout. */
  version: string | null;
  /** The version that ran before `version` (a version under versions/, or the checkout's version). */
  previous: string | null;
}

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
    return (await this.currentRecord()).version;
  }

  async currentRecord(): Promise<CurrentRecord> {
    const record = await readJson(join(this.stateDir, CURRENT_FILE), currentRecord);
    return { version: record?.version ?? null, previous: record?.previous ?? null };
  }

  /** version null: run the installed checkout. */
  async setCurrent(version: string | null, previous: string | null = null): Promise<void> {
    await writeFileDurably(join(this.stateDir, CURRENT_FILE), `${JSON.stringify({ version, previous })}\n`);
  }

  /** The installed versions (whole ones: not a staging's .partial-* directory). */
  async installedVersions(): Promise<string[]> {
    const names = await readdir(join(this.stateDir, VERSIONS_DIR)).catch(() => [] as string[]);
    return names.filter((name) => !name.includes('.partial-') && releaseVersionSchema.safeParse(name).success);
  }

  /**
   * Removes every installed version but `keep` (the current one and the one before, for a rollback)
   * and those whose own node_modules a kept version borrows (a release without its dependencies
   * links to the tree of the version it was staged under); returns what went.
   */
  async pruneVersions(keep: string[]): Promise<string[]> {
    const lent = await Promise.all(keep.map((v) => realpath(join(this.versionDir(v), 'node_modules')).catch(() => null)));
    const gone: string[] = [];
    for (const v of await this.installedVersions()) {
      if (keep.includes(v)) continue;
      const dir = await realpath(this.versionDir(v)).catch(() => this.versionDir(v));
      if (!lent.some((target) => target?.startsWith(`${dir}/`))) gone.push(v);
    }
    for (const version of gone) await rm(this.versionDir(version), { recursive: true, force: true });
    return gone;
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
