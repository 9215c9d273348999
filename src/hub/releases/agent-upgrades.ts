/**
 * Rollouts of an agent release (`dockfleet agents upgrade --to V --parallel N`): nodes go in waves
 * of N; each node gets the package over its own channel, stages it, restarts into it, and the wave
 * is done when each of its agents reconnected (on the new version: succeeded; on the old one after
 * its launcher went back: failed with the reason the old agent reports). A failed wave stops the
 * rollout; the nodes after it are skipped.
 *
 * Rollouts are durable (upgrade-store.ts): every step change is written before the rollout moves
 * on, and each node's step is an `agent-upgrade` job (held: the hub carries it out itself), so it
 * shows in `dockfleet jobs`. A hub started again resumes a running rollout where it stood: a node
 * that was sending or restarting is waited for (back on the new version: done; still in its trial:
 * its next link decides), then the next wave starts as before.
 *
 * With hub replicas (issue 17) the agent may be held by another replica and come back on yet
 * another: the release goes through `registry.requireLink` (a RemoteLink streams it through the
 * holder), and the node's return is followed through the registry (`changed`, and the node view's
 * agent version), wherever it links. Each running rollout is driven by one replica, the holder of
 * its lease (cluster/lease.ts); the others follow the lease and resume the rollout from the store
 * when its driver dies.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/logger.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { AGENT_UPGRADE_PATH, AGENT_UPGRADE_RESULT_PATH, RELEASE_SIGNATURE_HEADER, upgradeResult, type RolloutView } from '../../protocol/releases.ts';
import { LocalLeases, type Leases } from '../cluster/lease.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { NodeLink, NodeRegistry } from '../node-registry.ts';
import type { ReleaseStore } from './release-store.ts';
import type { AgentUpgradeStore } from './upgrade-store.ts';

type NodeState = RolloutView['nodes'][number];
type Release = { pkg: Buffer; signature: unknown };
const KEEP_ROLLOUTS = 50;
/** How long the hub waits for a node to come back after it accepted a release: the agent's own
 * trial (60 s) and time for its launcher to go back and the old version to reconnect. */
export const DEFAULT_RECONNECT_WAIT_MS = 150_000;
/** agent-upgrade jobs never expire while queued: a long rollout reaches its last wave days later. */
const UPGRADE_JOB_EXPIRY_MS = 365 * 24 * 60 * 60 * 1000;
/** How long a step waits for an online node's agent version to be known here before it counts the node offline. */
const VERSION_WAIT_MS = 5_000;
export const AGENT_UPGRADE_FAILED_CODE = 'agent_upgrade_failed';
const ROLLOUT_STOPPED_CODE = 'rollout_stopped';

interface Running {
  view: RolloutView;
  jobIds: string[];
  /** Set when this replica stops driving it (its lease was lost): nothing more is written from here. */
  halted?: boolean;
}

/** A node's agent as this replica sees it: how to reach it, which connection it is (the local link, or the
 * holder's claim epoch), and the version it runs. */
interface Presence {
  link: NodeLink;
  key: unknown;
  version: string;
}

/** The lease that lets one replica drive a rollout. */
export const rolloutLease = (id: string): string => `agent-upgrade-rollout:${id}`;

export class AgentUpgrades {
  readonly #registry: NodeRegistry;
  readonly #releases: ReleaseStore;
  readonly #store: AgentUpgradeStore;
  readonly #jobs: JobQueue;
  readonly #log: Logger;
  readonly #reconnectWaitMs: number;
  readonly #rollouts = new Map<string, Running>();
  readonly #waits = new Set<() => void>();
  /** Who waits for a node to come back, by name: one registry listener for all of them (a wave of 100 would be 100). */
  readonly #presenceWaiters = new Map<string, Set<() => void>>();
  readonly #onChanged = (): void => {
    for (const waiters of [...this.#presenceWaiters.values()]) for (const check of [...waiters]) check();
  };
  readonly #leases: Leases;
  readonly #following = new Map<string, { stop(): void }>();
  #closed = false;

  constructor(opts: {
    registry: NodeRegistry;
    releases: ReleaseStore;
    store: AgentUpgradeStore;
    jobs: JobQueue;
    log: Logger;
    reconnectWaitMs?: number;
    /** Who drives each rollout when replicas share the store (default: this hub, alone). */
    leases?: Leases;
  }) {
    this.#registry = opts.registry;
    this.#releases = opts.releases;
    this.#store = opts.store;
    this.#jobs = opts.jobs;
    this.#log = opts.log;
    this.#reconnectWaitMs = opts.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS;
    this.#leases = opts.leases ?? new LocalLeases();
    this.#registry.on('changed', this.#onChanged);
  }

  /** Loads the recent rollouts and follows the running ones: the replica holding a rollout's lease resumes it
   * (call before agents can link). */
  async resume(): Promise<void> {
    for (const stored of await this.#store.recent(KEEP_ROLLOUTS)) {
      this.#rollouts.set(stored.view.id, { view: stored.view, jobIds: stored.jobIds });
      if (stored.view.state === 'running') this.#follow(stored.view.id, null);
    }
  }

  /** Drives rollout `id` whenever this replica holds its lease: `started` (this replica just stored it) at once,
   * else (resumed, or taken over from a driver that died) as the store has it now. */
  #follow(id: string, started: { running: Running; release: Release | null } | null): void {
    let first = started;
    const following = this.#leases.follow(rolloutLease(id), async (held) => {
      let running: Running;
      let release: Release | null;
      if (first) {
        ({ running, release } = first);
        first = null;
      } else {
        const stored = (await this.#store.recent(KEEP_ROLLOUTS)).find((r) => r.view.id === id);
        if (stored?.view.state !== 'running' || this.#closed || held.aborted) {
          if (stored) this.#rollouts.set(id, { view: stored.view, jobIds: stored.jobIds });
          return;
        }
        running = { view: stored.view, jobIds: stored.jobIds };
        this.#rollouts.set(id, running);
        release = await this.#releases.get(stored.view.to);
        this.#log.info({ rollout: id, to: stored.view.to }, 'resuming agent upgrade rollout');
      }
      const halt = (): void => {
        running.halted = true;
      };
      held.addEventListener('abort', halt, { once: true });
      try {
        await this.#run(running, release);
      } catch (err) {
        this.#log.error({ err }, 'agent upgrade rollout failed');
      } finally {
        held.removeEventListener('abort', halt);
      }
    });
    this.#following.set(id, following);
  }

  /** Stops following rollouts (the hub is stopping): nothing more is written; a later start resumes them. */
  close(): void {
    this.#closed = true;
    for (const cancel of [...this.#waits]) cancel();
    for (const following of this.#following.values()) following.stop();
    this.#following.clear();
    this.#registry.off('changed', this.#onChanged);
  }

  list(): RolloutView[] {
    return [...this.#rollouts.values()].map((r) => r.view).reverse();
  }

  get(id: string): RolloutView | null {
    return this.#rollouts.get(id)?.view ?? null;
  }

  /** Plans the rollout, stores it with a job per node, and starts it; resolves once stored (it runs on in the background). */
  async start(req: { to: string; parallel?: number | undefined; nodes?: string[] | undefined }, createdBy = 'admin'): Promise<RolloutView> {
    if (this.#releases.releaseKey === null) throw new DockfleetError('release_key_missing', 'this hub has no release key (start it with --release-key)');
    // Another replica may have started one: the store knows.
    const running = [...this.#rollouts.values()].some((r) => r.view.state === 'running') || (await this.#store.recent(1)).some((r) => r.view.state === 'running');
    if (running) throw new DockfleetError('rollout_in_progress', 'an agent upgrade is already rolling out');
    const release = await this.#releases.get(req.to);
    if (!release) throw new DockfleetError('not_found', `no release ${req.to} on this hub (dockfleet release add)`);
    const names =
      req.nodes ??
      this.#registry
        .list()
        .filter((n) => n.status === 'online')
        .map((n) => n.name);
    for (const name of names) this.#registry.require(name);
    if (names.length === 0) throw new DockfleetError('invalid_state', 'no online node to upgrade');
    const parallel = req.parallel ?? 1;
    const view: RolloutView = {
      id: randomUUID(),
      to: req.to,
      parallel,
      state: 'running',
      createdAt: new Date().toISOString(),
      finishedAt: null,
      nodes: names.map((node, i) => ({ node, wave: Math.floor(i / parallel) + 1, state: 'waiting', from: null, reason: null, startedAt: null, finishedAt: null })),
    };
    const jobIds: string[] = [];
    for (const node of names) {
      const job = await this.#jobs.file({
        kind: 'agent-upgrade',
        node,
        stack: '',
        target: null,
        secrets: { env: {}, files: {} },
        idempotencyKey: `agent-upgrade:${view.id}:${node}`,
        createdBy,
        expiresInMs: UPGRADE_JOB_EXPIRY_MS,
        hubRun: true,
      });
      jobIds.push(job.id);
    }
    await this.#store.insertRollout({ view, jobIds, createdBy });
    const started = { view, jobIds };
    this.#rollouts.set(view.id, started);
    this.#trim();
    this.#follow(view.id, { running: started, release });
    return view;
  }

  #trim(): void {
    for (const [id, r] of this.#rollouts) {
      if (this.#rollouts.size <= KEEP_ROLLOUTS) break;
      if (r.view.state !== 'running') this.#rollouts.delete(id);
    }
  }

  async #run(rollout: Running, release: Release | null): Promise<void> {
    const { view } = rollout;
    const waves = Math.max(...view.nodes.map((n) => n.wave));
    for (let wave = 1; wave <= waves; wave++) {
      const members = view.nodes.map((n, i) => ({ n, i })).filter(({ n }) => n.wave === wave);
      await Promise.all(members.map(({ n, i }) => this.#step(rollout, i, n, release)));
      if (this.#stopped(rollout)) return;
      if (members.some(({ n }) => n.state === 'failed')) break;
    }
    for (const [i, n] of view.nodes.entries()) {
      if (n.state !== 'waiting' || this.#stopped(rollout)) continue;
      n.state = 'skipped';
      n.reason = 'an earlier wave failed';
      n.finishedAt = new Date().toISOString();
      await this.#store.saveStep(view.id, i, n);
      await this.#finishJob(rollout, rollout.jobIds[i], { errorCode: ROLLOUT_STOPPED_CODE, error: `skipped: ${n.reason}` });
    }
    if (this.#stopped(rollout)) return;
    view.state = view.nodes.every((n) => n.state === 'succeeded') ? 'succeeded' : 'failed';
    view.finishedAt = new Date().toISOString();
    await this.#store.finishRollout(view.id, view.state, view.finishedAt);
    this.#log.info({ rollout: view.id, to: view.to, state: view.state }, 'agent upgrade rollout finished');
  }

  /** Whether this replica must not move `rollout` on: the hub is stopping, or another replica drives it now. */
  #stopped(rollout: Running): boolean {
    return this.#closed || rollout.halted === true;
  }

  /** One node's step: done already, resumed after a hub restart, or carried out. */
  async #step(rollout: Running, position: number, n: NodeState, release: Release | null): Promise<void> {
    if (n.state === 'succeeded' || n.state === 'failed' || n.state === 'skipped') return;
    const stopped = (): boolean => this.#stopped(rollout);
    const save = async (): Promise<void> => {
      if (!stopped()) await this.#store.saveStep(rollout.view.id, position, n);
    };
    const finish = async (state: 'succeeded' | 'failed', reason: string | null): Promise<void> => {
      if (stopped()) return;
      n.state = state;
      n.reason = reason;
      n.finishedAt = new Date().toISOString();
      await save();
      const jobId = rollout.jobIds[position];
      if (state === 'succeeded') {
        const started = n.startedAt === null ? Date.now() : Date.parse(n.startedAt);
        await this.#finishJob(rollout, jobId, { result: { state: 'succeeded', error: null, revision: 0, rolledBack: false, startedAt: started, finishedAt: Date.now() } });
      } else await this.#finishJob(rollout, jobId, { errorCode: AGENT_UPGRADE_FAILED_CODE, error: reason ?? 'the upgrade failed' });
      this.#log.info({ node: n.node, to: rollout.view.to, state, reason }, 'agent upgrade');
    };
    const to = rollout.view.to;
    const gone = `the node did not come back within ${Math.round(this.#reconnectWaitMs / 1000)} s`;
    if (n.state === 'sending' || n.state === 'restarting') {
      // The driver stopped during this step: the node's next link (on any replica) tells how it went.
      const seen = await this.#nextPresence(n.node, null).promise;
      if (stopped()) return;
      if (!seen) return finish('failed', gone);
      if (seen.version === to) return finish('succeeded', null);
      const failed = await this.#failedTrial(seen, to, n.startedAt);
      if (failed) return finish('failed', failed);
      if (n.state === 'restarting') {
        // Accepted, and not back on the new version yet: still restarting, or in its trial.
        const back = await this.#nextPresence(n.node, seen.key).promise;
        if (stopped()) return;
        if (!back) return finish('failed', `the node came back on ${seen.version}, not ${to}`);
        if (back.version === to) return finish('succeeded', null);
        return finish('failed', (await this.#failedTrial(back, to, n.startedAt)) ?? `the node came back on ${back.version}, not ${to}`);
      }
      // Sending: the agent may never have had it; hand it over again below.
    }
    if (!release) return finish('failed', `release ${to} is no longer on this hub`);
    n.startedAt ??= new Date().toISOString();
    // Held elsewhere, its version may not have reached this replica yet: a moment for it.
    const now = this.#presence(n.node) ?? (await this.#nextPresence(n.node, null, VERSION_WAIT_MS).promise);
    if (stopped()) return;
    if (!now) return finish('failed', 'the node is offline');
    n.from = now.version;
    if (now.version === to) return finish('succeeded', `already running ${to}`);
    n.state = 'sending';
    await save();
    if (stopped()) return;
    await this.#jobs.markRunning(rollout.jobIds[position] ?? '').catch(() => false);
    // Listen before sending: the agent may be back before the answer is read.
    const back = this.#nextPresence(n.node, now.key);
    try {
      const answer = await now.link.requestJson({
        method: 'POST',
        path: `${AGENT_UPGRADE_PATH}?to=${encodeURIComponent(to)}`,
        headers: { [RELEASE_SIGNATURE_HEADER]: Buffer.from(JSON.stringify(release.signature)).toString('base64url'), 'content-type': 'application/gzip' },
        body: release.pkg,
        timeoutMs: 120_000,
      });
      if (answer.status !== 202) {
        back.cancel();
        const message = (answer.body as { error?: { message?: unknown } } | null)?.error?.message;
        return finish('failed', `the agent refused the release: ${typeof message === 'string' ? message : `status ${answer.status}`}`);
      }
    } catch (err) {
      back.cancel();
      return finish('failed', `could not hand the release over: ${(err as Error).message}`);
    }
    if (stopped()) return back.cancel();
    n.state = 'restarting';
    await save();
    const relinked = await back.promise;
    if (stopped()) return;
    if (!relinked) return finish('failed', gone);
    if (relinked.version === to) return finish('succeeded', null);
    return finish('failed', (await this.#failedTrial(relinked, to, n.startedAt)) ?? `the node came back on ${relinked.version}, not ${to}`);
  }

  async #finishJob(rollout: Running, jobId: string | undefined, outcome: Parameters<JobQueue['finish']>[1]): Promise<void> {
    if (!jobId || this.#stopped(rollout)) return;
    await this.#jobs.finish(jobId, outcome).catch((err: unknown) => this.#log.warn({ err, job: jobId }, 'could not record the agent-upgrade job'));
  }

  /** Why the node came back on another version, when its (old) agent reports a failed trial of `to`. */
  async #failedTrial(seen: Presence, to: string, since: string | null): Promise<string | null> {
    try {
      const res = await seen.link.requestJson({ method: 'GET', path: AGENT_UPGRADE_RESULT_PATH, timeoutMs: 10_000 });
      const result = upgradeResult.safeParse(res.body);
      if (res.status === 200 && result.success && result.data.to === to && !result.data.ok && (since === null || result.data.at >= Date.parse(since))) {
        return `back on ${seen.version}: ${result.data.reason ?? 'the new version failed'}`;
      }
    } catch {
      // The reason is a courtesy: the version the node came back on says enough.
    }
    return null;
  }

  /** The node's agent as this replica sees it now (linked here or held by another replica, with its version known), or null. */
  #presence(name: string): Presence | null {
    const node = this.#registry.byName(name);
    if (!node) return null;
    let link: NodeLink;
    try {
      link = this.#registry.requireLink(name);
    } catch {
      return null; // offline, or nobody can tell now (bus down): not back yet
    }
    if (link.closed) return null;
    const version = this.#registry.view(node).agentVersion;
    if (version === null) return null; // held elsewhere, and its holder has not said yet which version runs
    // A link here is its own connection; one held elsewhere is told apart by its claim's epoch (a KV revision: never reused).
    const key = this.#registry.link(node.id) === link ? link : `epoch:${(link as { epoch?: number }).epoch}`;
    return { link, key, version };
  }

  /** The node's agent on another connection than `previous`: now if it is, else once it is (null after the wait, or when cancelled). */
  #nextPresence(name: string, previous: unknown, waitMs = this.#reconnectWaitMs): { promise: Promise<Presence | null>; cancel: () => void } {
    let cancel = (): void => {};
    const promise = new Promise<Presence | null>((resolve) => {
      const check = (): void => {
        const seen = this.#presence(name);
        if (seen && seen.key !== previous) done(seen);
      };
      const timer = setTimeout(() => done(null), waitMs);
      const waiters = this.#presenceWaiters.get(name) ?? new Set();
      const done = (seen: Presence | null): void => {
        clearTimeout(timer);
        waiters.delete(check);
        if (waiters.size === 0 && this.#presenceWaiters.get(name) === waiters) this.#presenceWaiters.delete(name);
        this.#waits.delete(cancel);
        resolve(seen);
      };
      cancel = () => done(null);
      this.#waits.add(cancel);
      waiters.add(check);
      this.#presenceWaiters.set(name, waiters);
      check();
    });
    return { promise, cancel };
  }
}
