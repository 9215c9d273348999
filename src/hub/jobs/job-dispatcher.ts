/**
 * Carries queued and running jobs to their nodes: at once when a job is filed for an online
 * node, and whenever a node's link comes up (after an agent reconnect or a hub restart, the
 * store still holds every open job). One delivery at a time per node, in creation order: a
 * stack deploy never runs beside another on the same node. A delivery that ends without a
 * final answer is tried again — at once on a new link, with growing pauses on the same one —
 * so delivery is at least once; the agent's ledger makes it exactly once. No polling: one
 * timer for the soonest expiry of a queued job. With hub replicas each replica delivers only
 * to the links it holds itself (registry.link is local), and a job filed on one replica nudges
 * the others over the bus, so the holder delivers it; the store's claim on a job is a
 * compare-and-set, so it runs once.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import type { JobRecord } from '../../store/job-store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { deliverJob } from './job-delivery.ts';
import { DEFAULT_JOB_RETENTION, type JobQueue, type JobRetention } from './job-queue.ts';
import { failIfIntentExpired, sweepSigningDeadlines } from './signing-deadlines.ts';

export interface DispatcherOptions {
  queue: JobQueue;
  registry: NodeRegistry;
  log: Logger;
  /** First pause before delivering again on the same link (doubles up to retryMaxMs). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** A queued job the agent answers against the protocol this often fails (protocol_error). */
  maxBadDeliveries?: number;
  /** Finished jobs kept (default: the newest 10,000, none past 30 days); pruned at start and every pruneEveryMs. */
  retention?: JobRetention;
  pruneEveryMs?: number;
  /** How often jobs awaiting a signature (or held, signed, by their rollout) are checked for their deadlines. */
  signingSweepMs?: number;
}

const MAX_TIMER_MS = 60 * 60 * 1000;
/** An expired job that is being delivered right now is looked at again this much later. */
const EXPIRY_RECHECK_MS = 250;

export class JobDispatcher {
  readonly #queue: JobQueue;
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  readonly #maxBad: number;
  /** Nodes whose queue is being drained; `again`: something changed while it ran. */
  readonly #draining = new Map<string, { again: boolean; done: Promise<void> }>();
  readonly #inFlight = new Set<string>();
  readonly #closing = new AbortController();
  readonly #retention: JobRetention;
  readonly #pruneEveryMs: number;
  #pruneTimer: NodeJS.Timeout | null = null;
  readonly #signingSweepMs: number;
  #signingTimer: NodeJS.Timeout | null = null;
  #expiryTimer: NodeJS.Timeout | null = null;
  #expiryAt = Infinity;

  constructor(opts: DispatcherOptions) {
    this.#queue = opts.queue;
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#retryMinMs = opts.retryMinMs ?? 500;
    this.#retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.#maxBad = opts.maxBadDeliveries ?? 5;
    this.#retention = opts.retention ?? DEFAULT_JOB_RETENTION;
    this.#pruneEveryMs = opts.pruneEveryMs ?? 60 * 60 * 1000;
    this.#signingSweepMs = opts.signingSweepMs ?? 5_000;
  }

  /** Follows link-ups and new jobs; fails jobs that expired while the hub was down. */
  async start(): Promise<void> {
    this.#registry.on('linked', (link) => this.kick(link.nodeName));
    this.#registry.on('nudged', (node) => this.kick(node));
    this.#queue.on('filed', (job) => {
      this.kick(job.node);
      this.#registry.nudge(job.node);
      void this.#scheduleExpiry();
    });
    this.#queue.on('ready', (node) => {
      this.kick(node);
      this.#registry.nudge(node);
      void this.#scheduleExpiry();
    });
    this.#signingTimer = setInterval(() => {
      sweepSigningDeadlines(this.#queue).catch((err: unknown) => this.#log.error({ err }, 'signed-job deadline sweep failed'));
    }, this.#signingSweepMs);
    this.#signingTimer.unref();
    await this.#sweepExpired();
    await this.#prune();
    this.#pruneTimer = setInterval(() => void this.#prune(), this.#pruneEveryMs);
    this.#pruneTimer.unref();
    for (const node of this.#registry.list()) if (node.status === 'online') this.kick(node.name);
  }

  /** Delivers the node's open jobs if it is online (a no-op when already under way). */
  kick(node: string): void {
    if (this.#closing.signal.aborted) return;
    const running = this.#draining.get(node);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false, done: Promise.resolve() };
    this.#draining.set(node, state);
    state.done = (async () => {
      try {
        do {
          state.again = false;
          await this.#drain(node);
        } while (state.again && !this.#closing.signal.aborted);
      } catch (err) {
        this.#log.error({ err, node }, 'job dispatch failed');
      } finally {
        this.#draining.delete(node);
      }
    })();
  }

  async close(): Promise<void> {
    this.#closing.abort();
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    if (this.#pruneTimer) clearInterval(this.#pruneTimer);
    if (this.#signingTimer) clearInterval(this.#signingTimer);
    await Promise.allSettled([...this.#draining.values()].map((s) => s.done));
  }

  #linkOf(node: string): AgentLink | null {
    const record = this.#registry.byName(node);
    const link = record ? this.#registry.link(record.id) : null;
    return link && !link.closed ? link : null;
  }

  async #drain(node: string): Promise<void> {
    let pauses = 0;
    const bad = new Map<string, number>();
    while (!this.#closing.signal.aborted) {
      const link = this.#linkOf(node);
      if (!link) return;
      const [job] = await this.#queue.open(node);
      if (!job) return;
      if (job.state === 'queued' && job.expiresAt <= Date.now()) {
        await this.#expire(job);
        continue;
      }
      if (await failIfIntentExpired(this.#queue, job)) {
        this.#log.info({ job: job.id, node }, 'signed job failed: its intent expired before the host was reached');
        continue;
      }
      this.#inFlight.add(job.id);
      let outcome: Awaited<ReturnType<typeof deliverJob>>;
      try {
        outcome = await deliverJob(link, this.#queue, job, this.#closing.signal);
      } catch (err) {
        if (err instanceof DockfleetError && err.code === 'state_corrupt') {
          await this.#queue.finish(job.id, { errorCode: err.code, error: err.message });
          continue;
        }
        outcome = { final: false, reason: err instanceof DockfleetError ? err.message : 'internal error', protocol: false };
        this.#log.error({ err, job: job.id, node }, 'job delivery failed');
      } finally {
        this.#inFlight.delete(job.id);
      }
      if (outcome.final) {
        pauses = 0;
        continue;
      }
      if (this.#closing.signal.aborted) return;
      this.#log.info({ job: job.id, node, reason: outcome.reason }, 'job delivery did not finish; will deliver again');
      await this.#queue.setDeliveryError(job.id, outcome.reason).catch(() => {});
      if (outcome.protocol) {
        const count = (bad.get(job.id) ?? 0) + 1;
        bad.set(job.id, count);
        const fresh = await this.#queue.open(node).then((jobs) => jobs.find((j) => j.id === job.id));
        if (count >= this.#maxBad && fresh?.state === 'queued') {
          await this.#queue.finish(job.id, { errorCode: 'protocol_error', error: `node ${node} answered ${count} deliveries against the protocol: ${outcome.reason}` });
          continue;
        }
      }
      // A new link: deliver again at once. The same link: pause first, growing.
      if (this.#linkOf(node) !== link) continue;
      await this.#pause(link, Math.min(this.#retryMinMs * 2 ** pauses++, this.#retryMaxMs));
    }
  }

  async #prune(): Promise<void> {
    try {
      const pruned = await this.#queue.prune(Date.now(), this.#retention);
      if (pruned > 0) this.#log.info({ pruned }, 'finished jobs pruned');
    } catch (err) {
      this.#log.error({ err }, 'job pruning failed');
    }
  }

  #pause(link: AgentLink, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        link.off('close', done);
        this.#closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      link.once('close', done);
      this.#closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  async #expire(job: JobRecord): Promise<void> {
    const when = new Date(job.expiresAt).toISOString();
    if (await this.#queue.finish(job.id, { errorCode: 'job_expired', error: `expired: node ${job.node} did not take the job before ${when}` })) {
      this.#log.info({ job: job.id, node: job.node }, 'queued job expired');
    }
  }

  async #sweepExpired(): Promise<void> {
    const now = Date.now();
    for (const job of await this.#queue.open()) {
      if (job.state === 'queued' && job.expiresAt <= now && !this.#inFlight.has(job.id)) await this.#expire(job);
    }
    this.#expiryAt = Infinity;
    await this.#scheduleExpiry();
  }

  async #scheduleExpiry(): Promise<void> {
    if (this.#closing.signal.aborted) return;
    const at = await this.#queue.nextExpiry().catch(() => null);
    if (at === null || at >= this.#expiryAt) return;
    if (this.#expiryTimer) clearTimeout(this.#expiryTimer);
    this.#expiryAt = at;
    const delay = Math.min(Math.max(at - Date.now(), EXPIRY_RECHECK_MS), MAX_TIMER_MS);
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = null;
      this.#sweepExpired().catch((err: unknown) => this.#log.error({ err }, 'job expiry sweep failed'));
    }, delay);
    this.#expiryTimer.unref();
  }
}
