/**
 * The hub's end of each agent's backup report stream (`GET BACKUP_REPORTS_PATH`, NDJSON
 * `backupReportsMessage`s), opened on every link: the outcomes of the backups and verifications
 * the agent ran on its own clock, kept per volume in the store (the newer of what is stored and
 * what is reported wins). What happened while the hub was away arrives when the link returns.
 * The agent's message also carries the wrapped keys its scheduled backups made under escrow
 * custody: each goes to the escrow table (the first per repository is kept), as a hub-filed
 * job's does. The outcome of every volume-backup job the hub filed (CLI, UI, rebuild) is
 * recorded the same way when the job finishes, so the status says when the volume was last
 * backed up, whoever asked. A malformed line is skipped; a stream that ends while the link is up is opened again (at
 * growing intervals if the agent refuses it, e.g. an older agent answers 404).
 */
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import { BACKUP_REPORTS_PATH, backupReportsMessage, type BackupReportsMessage } from '../../protocol/volume-backup.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import { followAgentLines } from '../gateway/follow-agent-lines.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { JobView } from '../jobs/job-views.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { Store } from '../../store/store.ts';
import type { VolumeJobSpec } from '../../protocol/volume-backup.ts';
import type { VolumeBackupStore } from './volume-backup-store.ts';

const MAX_LINE = 8 * 1024 * 1024;

/** Where hub-filed jobs and escrowed keys come from (without them, only the agents' reports are kept). */
export interface BackupFeedSources {
  jobs?: JobQueue;
  records?: Pick<Store, 'jobs' | 'rebuilds'>;
}

export class BackupReportFeed {
  readonly #store: VolumeBackupStore;
  readonly #log: Logger;
  readonly #onLinked = (link: AgentLink): void => this.#follow(link);
  readonly #registry: NodeRegistry;
  /** Settles when every report received so far is stored (tests, shutdown). */
  #writing: Promise<void> = Promise.resolve();
  readonly #more: BackupFeedSources;
  readonly #onFinished = (view: JobView): void => {
    if (view.kind === 'volume-backup' && (view.state === 'succeeded' || view.state === 'failed')) this.#queue(() => this.#recordJob(view.id), view.node);
  };

  constructor(registry: NodeRegistry, store: VolumeBackupStore, log: Logger, more: BackupFeedSources = {}) {
    this.#registry = registry;
    this.#store = store;
    this.#log = log;
    this.#more = more;
    registry.on('linked', this.#onLinked);
    more.jobs?.on('finished', this.#onFinished);
    // Jobs that finished before the hub recorded them here: newest wins, so this is idempotent.
    if (more.jobs && more.records) this.#queue(() => this.#backfill(), '');
  }

  async close(): Promise<void> {
    this.#registry.off('linked', this.#onLinked);
    this.#more.jobs?.off('finished', this.#onFinished);
    await this.#writing;
  }

  /** Settles when everything received so far is stored (tests). */
  settled(): Promise<void> {
    return this.#writing;
  }

  #queue(work: () => Promise<void>, node: string): void {
    this.#writing = this.#writing.then(work).catch((err: unknown) => {
      this.#log.error({ err, node }, 'backup report could not be stored');
    });
  }

  /** One hub-filed volume-backup job's outcome, as the volume's latest backup (when newer). */
  async #recordJob(id: string): Promise<void> {
    const job = await this.#more.records?.jobs.getJob(id);
    if (job?.kind !== 'volume-backup' || job.finishedAt === null || (job.state !== 'succeeded' && job.state !== 'failed')) return;
    let spec: VolumeJobSpec | undefined;
    try {
      spec = (JSON.parse(job.request) as { volume?: VolumeJobSpec }).volume;
    } catch {
      return;
    }
    if (!spec) return;
    const out = job.result?.volume;
    const startedAt = job.result?.startedAt ?? job.startedAt ?? job.finishedAt;
    await this.#store.recordReport(
      job.node,
      spec.volume,
      {
        at: job.finishedAt,
        ok: job.state === 'succeeded',
        snapshot: out?.snapshot ?? null,
        bytesAdded: out?.bytesAdded ?? null,
        durationMs: Math.max(0, job.finishedAt - startedAt),
        error: job.error === null ? null : job.error.slice(0, 2_000),
      },
      null,
    );
  }

  async #backfill(): Promise<void> {
    const jobs = await this.#more.records!.jobs.listJobs({ limit: 10_000 });
    for (const j of jobs) if (j.kind === 'volume-backup' && (j.state === 'succeeded' || j.state === 'failed')) await this.#recordJob(j.id);
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
    this.#queue(() => this.#record(link.nodeName, message.data), link.nodeName);
  }

  async #record(node: string, message: BackupReportsMessage): Promise<void> {
    for (const r of message.reports) await this.#store.recordReport(node, r.volume, r.backup, r.verify);
    const escrows = this.#more.records?.rebuilds;
    for (const e of message.escrows ?? []) {
      if (!escrows) break;
      if (await escrows.putEscrow({ node, repository: e.repository, wrappedKey: e.escrowedKey, createdAt: e.createdAt, jobId: 'scheduled' })) {
        this.#log.info({ node, repository: e.repository }, 'kept the escrowed key a scheduled backup made');
      }
    }
  }
}
