/**
 * Backups not proven: a volume with a backup policy whose last successful verification (a
 * test restore checked against the snapshot's listing, src/agent/backup/backup-verify.ts) is
 * older than the limit (default one day), or that has none a limit after the policy was set,
 * raises a condition naming node and volume; a successful verification clears it, and so does
 * removing the policy.
 */
import type { VolumeBackupStore } from '../../volume-backups/volume-backup-store.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'backup-unverified';
export const VERIFY_MAX_AGE_DEFAULT_MS = 86_400_000;

export class BackupVerifySource implements AlertSource {
  readonly kind = KIND;
  readonly #store: VolumeBackupStore;
  readonly #maxAgeMs: number;

  constructor(store: VolumeBackupStore, maxAgeMs = VERIFY_MAX_AGE_DEFAULT_MS) {
    this.#store = store;
    this.#maxAgeMs = maxAgeMs;
  }

  start(sink: ConditionSink): () => void {
    let looking = false;
    const look = (): void => {
      if (looking) return;
      looking = true;
      void this.#look(sink)
        .catch(() => {})
        .finally(() => {
          looking = false;
        });
    };
    const timer = setInterval(look, Math.max(250, Math.min(60_000, Math.floor(this.#maxAgeMs / 4)))).unref();
    look();
    return () => clearInterval(timer);
  }

  async #look(sink: ConditionSink): Promise<void> {
    const now = Date.now();
    const holding = new Set<string>();
    for (const { node, volume, policy } of await this.#store.policies()) {
      const status = await this.#store.status(node, volume);
      const okAt = status?.lastVerifiedOkAt ?? null;
      const key = `${KIND}:${node}:${volume}`;
      if (now - (okAt ?? policy.setAt) <= this.#maxAgeMs) continue;
      holding.add(key);
      const last = status?.lastVerify;
      const why = last && !last.ok ? ` The last verification (${new Date(last.at).toISOString()}) failed: ${last.detail.slice(0, 800)}` : '';
      sink.raise(KIND, {
        key,
        severity: 'warning',
        node,
        subject: volume,
        title: `Backups of volume ${volume} on ${node} are not verified`,
        detail: `${okAt === null ? `No verification of ${volume} has succeeded since its policy was set (${new Date(policy.setAt).toISOString()}).` : `The last successful verification of ${volume} was at ${new Date(okAt).toISOString()}.`}${why}`,
      });
    }
    sink.clearOthers(`${KIND}:`, holding);
  }
}
