/**
 * The hub's alerts, assembled: the registry of sources (nodes, containers, stacks, jobs; a later
 * kind is one more `AlertSource` passed in `extraSources`), the incident book they report to,
 * the receivers and the worker that delivers each incident's events to them. When replicas
 * share the store, one judges (the holder of `alert-sources`: every replica sees the same
 * fleet, and each raising the same 10,000 offline nodes at the database was what sank one) and
 * one delivers (the holder of `alert-deliveries`).
 */
import type { AlertStore, IncidentRecord } from '../../store/alert-store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { StackStatusFeed } from '../jobs/stack-status-feed.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { SecretBox } from '../secret-box.ts';
import { LocalLeases, type Leases } from '../cluster/lease.ts';
import type { AlertSource } from './alert-source.ts';
import { DeliveryWorker, type DeliveryTuning } from './delivery-worker.ts';
import { IncidentBook } from './incident-book.ts';
import { Receivers } from './receivers.ts';
import { ContainerSource, type ContainerLoopTuning } from './sources/container-source.ts';
import { jobFailureSource } from './sources/job-failure-source.ts';
import { NodeOfflineSource } from './sources/node-offline-source.ts';
import { stackDriftSource } from './sources/stack-drift-source.ts';

export interface AlertTuning {
  /** How long a node may be away before it is an incident (default 30 s). */
  offlineGraceMs: number;
  containerLoop: Partial<ContainerLoopTuning>;
  delivery: Partial<DeliveryTuning>;
  /** How old a volume's last successful backup verification may be (default one day). */
  backupVerifyMaxAgeMs: number;
}

export const OFFLINE_GRACE_DEFAULT_MS = 30_000;

export interface AlertsDeps {
  store: AlertStore;
  secrets: SecretBox;
  log: Logger;
  registry: NodeRegistry;
  inventory: InventoryCache;
  jobs: JobQueue;
  stackStatus: StackStatusFeed;
  tuning?: Partial<AlertTuning>;
  extraSources?: AlertSource[];
  /** Who judges and who delivers when replicas share the store (default: this hub, alone). */
  leases?: Leases;
}

/** The lease whose holder sends the cluster's alert deliveries. */
export const DELIVERY_LEASE = 'alert-deliveries';
/** The lease whose holder runs the sources (raises and clears incidents). */
export const SOURCES_LEASE = 'alert-sources';

export class Alerts {
  readonly store: AlertStore;
  readonly book: IncidentBook;
  readonly receivers: Receivers;
  readonly worker: DeliveryWorker;
  readonly #stops: (() => void)[] = [];

  private constructor(deps: AlertsDeps) {
    this.store = deps.store;
    this.book = new IncidentBook(deps.store, deps.log);
    this.receivers = new Receivers(deps.store, deps.secrets);
    this.worker = new DeliveryWorker({ store: deps.store, receivers: this.receivers, log: deps.log, tuning: deps.tuning?.delivery ?? {} });
  }

  static async start(deps: AlertsDeps): Promise<Alerts> {
    const alerts = new Alerts(deps);
    await alerts.book.load();
    alerts.book.on('changed', () => alerts.worker.poke());
    const sources: AlertSource[] = [
      new NodeOfflineSource(deps.registry, deps.tuning?.offlineGraceMs ?? OFFLINE_GRACE_DEFAULT_MS),
      new ContainerSource(deps.registry, deps.inventory, deps.tuning?.containerLoop ?? {}),
      stackDriftSource(deps.stackStatus),
      jobFailureSource(deps.jobs),
      ...(deps.extraSources ?? []),
    ];
    const leases = deps.leases ?? new LocalLeases();
    // Judges while this replica holds the lease; taken again, it reads the open incidents afresh
    // (the holder meanwhile opened and resolved some).
    let fresh = true;
    const judging = leases.follow(SOURCES_LEASE, async (held) => {
      if (!fresh) await alerts.book.load();
      fresh = false;
      if (held.aborted) return;
      const stops = sources.map((source) => source.start(alerts.book));
      await new Promise((resolve) => held.addEventListener('abort', resolve, { once: true }));
      for (const stop of stops) stop();
      await alerts.book.settled();
    });
    // Delivers (first what the previous run left pending) while this replica holds the lease.
    const delivering = leases.follow(DELIVERY_LEASE, (held) => alerts.worker.deliverWhile(held));
    alerts.#stops.push(
      () => judging.stop(),
      () => delivering.stop(),
    );
    return alerts;
  }

  /** A made-up incident for the test button (never stored). */
  static testIncident(): IncidentRecord {
    const now = Date.now();
    return {
      id: 'inc_test',
      key: 'test',
      kind: 'test',
      severity: 'warning',
      node: null,
      subject: 'dockfleet',
      title: 'Test alert from dockfleet',
      detail: 'This receiver is set up correctly.',
      state: 'open',
      openedAt: now,
      updatedAt: now,
      resolvedAt: null,
    };
  }

  async close(): Promise<void> {
    for (const stop of this.#stops.splice(0)) stop();
    await this.book.settled();
    await this.worker.close();
  }
}
