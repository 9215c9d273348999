/**
 * The hub's end of each agent's backup report stream (`GET BACKUP_REPORTS_PATH`, NDJSON
 * `backupReportsMessage`s), opened on every link: the outcomes of the backups and verifications
 * the agent ran on its own clock, kept per volume in the store (the newer of what is stored and
 * what is reported wins). What happened while the hub was away arrives when the link returns.
 * A malformed line is skipped; a stream that ends while the link is up is opened again (at
 * growing intervals if the agent refuses it, e.g. an older agent answers 404).
 */
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import { BACKUP_REPORTS_PATH, backupReportsMessage, type BackupReportsMessage } from '../../protocol/volume-backup.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import { followAgentLines } from '../gateway/follow-agent-lines.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { VolumeBackupStore } from './volume-backup-store.ts';

const MAX_LINE = 8 * 1024 * 1024;

export class BackupReportFeed {
  readonly #store: VolumeBackupStore;
  readonly #log: Logger;
  readonly #onLinked = (link: AgentLink): void => this.#follow(link);
  readonly #registry: NodeRegistry;
  /** Settles when every report received so far is stored (tests, shutdown). */
  #writing: Promise<void> = Promise.resolve();

  constructor(registry: NodeRegistry, store: VolumeBackupStore, log: Logger) {
    this.#registry = registry;
    this.#store = store;
    this.#log = log;
    registry.on('linked', this.#onLinked);
  }

  async close(): Promise<void> {
    this.#registry.off('linked', this.#onLinked);
    await this.#writing;
  }

  #follow(link: AgentLink): void {
    followAgentLines(link, { path: BACKUP_REPORTS_PATH, maxLine: MAX_LINE, what: 'backup report', log: this.#log, onLine: (l, line) => this.#accept(l, line) });
  }


  #accept(link: AgentLink, line: string): void {
    const parsed = parseJsonLine(line);
    const message = parsed.ok ? backupReportsMessage.safeParse(parsed.value) : null;
    if (!message?.success) {
      this.#log.warn({ node: link.nodeName }, 'ignored a malformed backup report');
      return;
    }
    this.#writing = this.#writing.then(() => this.#record(link.nodeName, message.data)).catch((err: unknown) => {
      this.#log.error({ err, node: link.nodeName }, 'backup report could not be stored');
    });
  }

  async #record(node: string, message: BackupReportsMessage): Promise<void> {
    for (const r of message.reports) await this.#store.recordReport(node, r.volume, r.backup, r.verify);
  }
}
