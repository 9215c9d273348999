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
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/logger.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { AGENT_UPGRADE_PATH, AGENT_UPGRADE_RESULT_PATH, RELEASE_SIGNATURE_HEADER, upgradeResult, type RolloutView } from '../../protocol/releases.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { NodeRegistry } from '../node-registry.ts';
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
export const AGENT_UPGRADE_FAILED_CODE = 'agent_upgrade_failed';
const ROLLOUT_STOPPED_CODE = 'rollout_stopped';

interface Running {
  view: RolloutView;
  jobIds: string[];
}

export class AgentUpgrades {
  readonly #registry: NodeRegistry;
  readonly #releases: ReleaseStore;
  readonly #store: AgentUpgradeStore;
  readonly #jobs: JobQueue;
  readonly #log: Logger;
  readonly #reconnectWaitMs: number;
  readonly #rollouts = new Map<string, Running>();
  readonly #waits = new Set<() => void>();
  /** Who waits for each node's next link: one registry listener for all of them (a wave of 100 would be 100). */
  readonly #linkWaiters = new Map<string, Set<(link: AgentLink) => void>>();
  readonly #onLinked = (link: AgentLink): void => {
    for (const waiter of [...(this.#linkWaiters.get(link.nodeName) ?? [])]) waiter(link);
  };
  #closed = false;

  constructor(opts: { registry: NodeRegistry; releases: ReleaseStore; store: AgentUpgradeStore; jobs: JobQueue; log: Logger; reconnectWaitMs?: number }) {
    this.#registry = opts.registry;
    this.#releases = opts.releases;
    this.#store = opts.store;
    this.#jobs = opts.jobs;
    this.#log = opts.log;
    this.#reconnectWaitMs = opts.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS;
    this.#registry.on('linked', this.#onLinked);
  }

  /** Loads the recent rollouts and resumes the running ones (call before agents can link). */
  async resume(): Promise<void> {
    for (const stored of await this.#store.recent(KEEP_ROLLOUTS)) {
      this.#rollouts.set(stored.view.id, { view: stored.view, jobIds: stored.jobIds });
      if (stored.view.state !== 'running') continue;
      const release = await this.#releases.get(stored.view.to);
      const running = this.#rollouts.get(stored.view.id)!;
      this.#log.info({ rollout: stored.view.id, to: stored.view.to }, 'resuming agent upgrade rollout');
      void this.#run(running, release).catch((err: unknown) => this.#log.error({ err }, 'agent upgrade rollout failed'));
    }
  }

  /** Stops following rollouts (the hub is stopping): nothing more is written; a later start resumes them. */
  close(): void {
    this.#closed = true;
    for (const cancel of [...this.#waits]) cancel();
    this.#registry.off('linked', this.#onLinked);
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
    if ([...this.#rollouts.values()].some((r) => r.view.state === 'running')) throw new DockfleetError('rollout_in_progress', 'an agent upgrade is already rolling out');
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
    const running = { view, jobIds };
    this.#rollouts.set(view.id, running);
    this.#trim();
    void this.#run(running, release).catch((err: unknown) => this.#log.error({ err }, 'agent upgrade rollout failed'));
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
      if (this.#closed) return;
      if (members.some(({ n }) => n.state === 'failed')) break;
    }
    for (const [i, n] of view.nodes.entries()) {
      if (n.state !== 'waiting') continue;
      n.state = 'skipped';
      n.reason = 'an earlier wave failed';
      n.finishedAt = new Date().toISOString();
      await this.#store.saveStep(view.id, i, n);
      await this.#finishJob(rollout.jobIds[i], { errorCode: ROLLOUT_STOPPED_CODE, error: `skipped: ${n.reason}` });
    }
    view.state = view.nodes.every((n) => n.state === 'succeeded') ? 'succeeded' : 'failed';
    view.finishedAt = new Date().toISOString();
    await this.#store.finishRollout(view.id, view.state, view.finishedAt);
    this.#log.info({ rollout: view.id, to: view.to, state: view.state }, 'agent upgrade rollout finished');
  }

  /** One node's step: done already, resumed after a hub restart, or carried out. */
  async #step(rollout: Running, position: number, n: NodeState, release: Release | null): Promise<void> {
    if (n.state === 'succeeded' || n.state === 'failed' || n.state === 'skipped') return;
    const save = async (): Promise<void> => {
      if (!this.#closed) await this.#store.saveStep(rollout.view.id, position, n);
    };
    const finish = async (state: 'succeeded' | 'failed', reason: string | null): Promise<void> => {
      if (this.#closed) return;
      n.state = state;
      n.reason = reason;
      n.finishedAt = new Date().toISOString();
      await save();
      const jobId = rollout.jobIds[position];
      if (state === 'succeeded') {
        const started = n.startedAt === null ? Date.now() : Date.parse(n.startedAt);
        await this.#finishJob(jobId, { result: { state: 'succeeded', error: null, revision: 0, rolledBack: false, startedAt: started, finishedAt: Date.now() } });
      } else await this.#finishJob(jobId, { errorCode: AGENT_UPGRADE_FAILED_CODE, error: reason ?? 'the upgrade failed' });
      this.#log.info({ node: n.node, to: rollout.view.to, state, reason }, 'agent upgrade');
    };
    const to = rollout.view.to;
    if (n.state === 'sending' || n.state === 'restarting') {
      // The hub stopped during this step: the node's next link tells how it went.
      const link = await this.#linkOf(n.node, null);
      if (this.#closed) return;
      if (!link) return finish('failed', `the node did not come back within ${Math.round(this.#reconnectWaitMs / 1000)} s`);
      if (link.agentVersion === to) return finish('succeeded', null);
      const failed = await this.#failedTrial(link, to, n.startedAt);
      if (failed) return finish('failed', failed);
      if (n.state === 'restarting') {
        // Accepted, and not back on the new version yet: still restarting, or in its trial.
        const relinked = await this.#linkOf(n.node, link);
        if (this.#closed) return;
        if (!relinked) return finish('failed', `the node came back on ${link.agentVersion}, not ${to}`);
        if (relinked.agentVersion === to) return finish('succeeded', null);
        return finish('failed', (await this.#failedTrial(relinked, to, n.startedAt)) ?? `the node came back on ${relinked.agentVersion}, not ${to}`);
      }
      // Sending: the agent may never have had it; hand it over again below.
    }
    if (!release) return finish('failed', `release ${to} is no longer on this hub`);
    n.startedAt ??= new Date().toISOString();
    const node = this.#registry.byName(n.node);
    const link = node ? this.#registry.link(node.id) : null;
    if (!link) return finish('failed', 'the node is offline');
    n.from = link.agentVersion;
    if (link.agentVersion === to) return finish('succeeded', `already running ${to}`);
    n.state = 'sending';
    await save();
    await this.#jobs.markRunning(rollout.jobIds[position] ?? '').catch(() => false);
    // Listen before sending: the agent may be back before the answer is read.
    const back = this.#nextLink(n.node, link);
    try {
      const answer = await link.requestJson({
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
    if (this.#closed) return back.cancel();
    n.state = 'restarting';
    await save();
    const relinked = await back.promise;
    if (this.#closed) return;
    if (!relinked) return finish('failed', `the node did not come back within ${Math.round(this.#reconnectWaitMs / 1000)} s`);
    if (relinked.agentVersion === to) return finish('succeeded', null);
    return finish('failed', (await this.#failedTrial(relinked, to, n.startedAt)) ?? `the node came back on ${relinked.agentVersion}, not ${to}`);
  }

  async #finishJob(jobId: string | undefined, outcome: Parameters<JobQueue['finish']>[1]): Promise<void> {
    if (!jobId || this.#closed) return;
    await this.#jobs.finish(jobId, outcome).catch((err: unknown) => this.#log.warn({ err, job: jobId }, 'could not record the agent-upgrade job'));
  }

  /** Why the node came back on another version, when its (old) agent reports a failed trial of `to`. */
  async #failedTrial(link: AgentLink, to: string, since: string | null): Promise<string | null> {
    try {
      const res = await link.requestJson({ method: 'GET', path: AGENT_UPGRADE_RESULT_PATH, timeoutMs: 10_000 });
      const result = upgradeResult.safeParse(res.body);
      if (res.status === 200 && result.success && result.data.to === to && !result.data.ok && (since === null || result.data.at >= Date.parse(since))) {
        return `back on ${link.agentVersion}: ${result.data.reason ?? 'the new version failed'}`;
      }
    } catch {
      // The reason is a courtesy: the version the node came back on says enough.
    }
    return null;
  }

  /** The node's link now (if it is not `previous`), or its next one; null after the wait. */
  #linkOf(name: string, previous: AgentLink | null): Promise<AgentLink | null> {
    const next = this.#nextLink(name, previous);
    const node = this.#registry.byName(name);
    const now = node ? this.#registry.link(node.id) : null;
    if (now && now !== previous && !now.closed) {
      next.cancel();
      return Promise.resolve(now);
    }
    return next.promise;
  }

  /** The node's next link after `previous` (or null after the wait, or when cancelled). */
  #nextLink(name: string, previous: AgentLink | null): { promise: Promise<AgentLink | null>; cancel: () => void } {
    let cancel = (): void => {};
    const promise = new Promise<AgentLink | null>((resolve) => {
      const onLinked = (link: AgentLink): void => {
        if (link !== previous) done(link);
      };
      const timer = setTimeout(() => done(null), this.#reconnectWaitMs);
      const waiters = this.#linkWaiters.get(name) ?? new Set();
      const done = (link: AgentLink | null): void => {
        clearTimeout(timer);
        waiters.delete(onLinked);
        if (waiters.size === 0 && this.#linkWaiters.get(name) === waiters) this.#linkWaiters.delete(name);
        this.#waits.delete(cancel);
        resolve(link);
      };
      cancel = () => done(null);
      this.#waits.add(cancel);
      waiters.add(onLinked);
      this.#linkWaiters.set(name, waiters);
    });
    return { promise, cancel };
  }
}
