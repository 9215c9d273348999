/**
 * Where a volume job's repository is, judged by the host's policy on what will happen: the
 * `backups` section must be present; a path repository is resolved on this host (symlinks and
 * `..` followed through its longest existing prefix) and must not lead into the engine's data
 * root, the system's own directories, or outside `repositoryPaths` when the policy lists them.
 * A URL repository is taken as restic would (its credentials come from the job's secrets).
 */
import { realpath } from 'node:fs/promises';
import { dirname, join, basename, resolve } from 'node:path';
import type { BackupRepository } from '../../protocol/volume-backup.ts';
import type { BackupsPolicy } from '../policy/policy-file.ts';
import { hubRepoArgs } from './hub-repo.ts';

/** Never a repository here (nor under them). */
const SYSTEM_DIRS = ['/proc', '/sys', '/dev', '/etc', '/boot', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/run', '/var/run'];
/** The hub repository that holds this node's volumes (one repository, so restic dedups across them). */
export const HUB_REPO_NAME = 'volumes';

export interface ResolvedRepository {
  /** restic's `-r`. */
  repo: string;
  /** restic's `-o` options (the hub repository). */
  options: string[];
  /** What the key file is named by and the result shows (a URL without credentials). */
  label: string;
}

export class BackupRefused extends Error {}

const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

/** The path with its longest existing prefix resolved through symlinks. */
async function resolveOnHost(path: string): Promise<string> {
  let head = resolve(path);
  const tail: string[] = [];
  for (;;) {
    try {
      return join(await realpath(head), ...tail.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || head === '/') throw new BackupRefused(`the repository path ${path} cannot be resolved on this host (${code ?? 'error'})`);
      tail.push(basename(head));
      head = dirname(head);
    }
  }
}

export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z0-9]+:(?:\/\/)?)[^/@]*@/i, '$1');
}

export async function resolveRepository(wanted: BackupRepository | null, policy: BackupsPolicy, ctx: { dataRoot: string | null; stateDir: string }): Promise<ResolvedRepository> {
  let repo = wanted;
  if (repo === null) {
    const fallback = policy.repository;
    if (fallback === null) throw new BackupRefused("the job names no repository and this host's policy sets no backups.repository");
    repo = fallback.startsWith('/') ? { kind: 'path', path: fallback } : fallback === 'hub' ? { kind: 'hub' } : { kind: 'url', url: fallback };
  }
  if (repo.kind === 'hub') {
    const args = hubRepoArgs(ctx.stateDir, HUB_REPO_NAME);
    return { repo: args.repo, options: args.options, label: `hub:${HUB_REPO_NAME}` };
  }
  if (repo.kind === 'url') return { repo: repo.url, options: [], label: withoutCredentials(repo.url) };
  const real = await resolveOnHost(repo.path);
  const system = SYSTEM_DIRS.find((dir) => inside(real, dir));
  if (real === '/' || system) throw new BackupRefused(`the repository path ${repo.path} leads to ${real}, inside the system's own ${system ?? '/'}`);
  if (ctx.dataRoot && (inside(real, ctx.dataRoot) || inside(ctx.dataRoot, real))) {
    throw new BackupRefused(`the repository path ${repo.path} leads to ${real}, which overlaps the engine's data root ${ctx.dataRoot}`);
  }
  if (inside(real, ctx.stateDir)) throw new BackupRefused(`the repository path ${repo.path} leads into the agent's state directory`);
  if (policy.repositoryPaths && !policy.repositoryPaths.some((dir) => inside(real, dir))) {
    throw new BackupRefused(`the repository path ${repo.path} leads to ${real}, outside backups.repositoryPaths (${policy.repositoryPaths.join(', ')})`);
  }
  return { repo: real, options: [], label: real };
}
