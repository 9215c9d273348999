/**
 * What the hub keeps so a node's volume backups run unattended (issue 14): the password of each
 * hub-managed repository, made here (32 random bytes, base64) on the first backup filed or
 * scheduled to it and the same for every later job, and each policy's restic environment for a
 * URL repository. Both are sealed by the secret box (bound to node and repository or volume),
 * go to the agent only inside a job's sealed secrets (HUB_KEPT_FILE), and are never answered
 * by the API: a policy's environment is shown by its names only.
 *
 * The hub cannot see a host's custody (its policy file), so a backup's job carries the password
 * whatever the custody; an escrow or host-only host ignores it and keeps its own key.
 */
import { randomBytes } from 'node:crypto';
import { encodeHubKept, HUB_KEPT_FILE } from '../../protocol/hub-kept-secrets.ts';
import type { BackupRepository, VolumeBackupPolicy } from '../../protocol/volume-backup.ts';
import type { SecretBox } from '../secret-box.ts';
import type { VolumeBackupStore } from './volume-backup-store.ts';

/** The hub's name for a repository, which keys its password: `default` is the host's own. */
export function repositoryName(repository: BackupRepository | null): string {
  if (repository === null) return 'default';
  if (repository.kind === 'hub') return 'hub';
  return repository.kind === 'path' ? repository.path : repository.url;
}

const keyContext = (node: string, repository: string): string => `volume-repo-key:${node}\n${repository}`;
const envContext = (node: string, volume: string): string => `volume-policy-env:${node}\n${volume}`;

export class HubKeptSecrets {
  readonly #store: VolumeBackupStore;
  readonly #box: SecretBox;

  constructor(store: VolumeBackupStore, box: SecretBox) {
    this.#store = store;
    this.#box = box;
  }

  /** The repository's password; made and kept first when `create` and there is none. */
  async password(node: string, repository: BackupRepository | null, create: boolean): Promise<string | null> {
    const name = repositoryName(repository);
    let sealed = await this.#store.repoKey(node, name);
    if (sealed === null) {
      if (!create) return null;
      sealed = await this.#store.putRepoKey(node, name, this.#box.seal(randomBytes(32).toString('base64'), keyContext(node, name)), Date.now());
    }
    return this.#box.openText(sealed, keyContext(node, name));
  }

  /** The secret files of a volume-backup (makes the password), -restore or -snapshots job. */
  async forVolumeJob(node: string, kind: 'volume-backup' | 'volume-restore' | 'volume-snapshots', repository: BackupRepository | null): Promise<Record<string, string>> {
    const password = await this.password(node, repository, kind === 'volume-backup');
    return password === null ? {} : { [HUB_KEPT_FILE]: encodeHubKept({ env: { RESTIC_PASSWORD: password }, volumes: {} }) };
  }

  /** The secret files of a volume-policies job: per policy its repository's password (made when new) and its environment. */
  async forPolicies(node: string, policies: readonly VolumeBackupPolicy[]): Promise<Record<string, string>> {
    if (policies.length === 0) return {};
    const volumes: Record<string, Record<string, string>> = {};
    for (const p of policies) {
      const env = (await this.policyEnv(node, p.volume)) ?? {};
      const password = await this.password(node, p.repository, true);
      volumes[p.volume] = { ...env, ...(password === null ? {} : { RESTIC_PASSWORD: password }) };
    }
    return { [HUB_KEPT_FILE]: encodeHubKept({ env: {}, volumes }) };
  }

  async policyEnv(node: string, volume: string): Promise<Record<string, string> | null> {
    const kept = await this.#store.policySecrets(node, volume);
    return kept ? (JSON.parse(this.#box.openText(kept.sealedEnv, envContext(node, volume))) as Record<string, string>) : null;
  }

  /** The names of a policy's environment (what GET shows). */
  async policyEnvNames(node: string, volume: string): Promise<string[]> {
    return (await this.#store.policySecrets(node, volume))?.names ?? [];
  }

  /** Sets a policy's environment; an empty one (or null) removes it. */
  async setPolicyEnv(node: string, volume: string, env: Record<string, string> | null): Promise<void> {
    if (env === null || Object.keys(env).length === 0) return this.#store.setPolicySecrets(node, volume, null);
    await this.#store.setPolicySecrets(node, volume, { sealedEnv: this.#box.seal(JSON.stringify(env), envContext(node, volume)), names: Object.keys(env).sort() });
  }
}
