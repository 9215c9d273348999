/**
 * Rollouts of an agent release (`dockfleet agents upgrade --to V --parallel N`): nodes go in waves
 * of N; each node gets the package over its own channel, stages it, restarts into it, and the wave
 * is done when each of its agents reconnected (on the new version: succeeded; on the old one after
 * its launcher went back: failed with the reason the old agent reports). A failed wave stops the
 * rollout; the nodes after it are skipped. Rollouts live in memory (the last 50).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/logger.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { AGENT_UPGRADE_PATH, AGENT_UPGRADE_RESULT_PATH, RELEASE_SIGNATURE_HEADER, upgradeResult, type RolloutView } from '../../protocol/releases.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { ReleaseStore } from './release-store.ts';

type NodeState = RolloutView['nodes'][number];
const KEEP_ROLLOUTS = 50;
/** How long the hub waits for a node to come back after it accepted a release: the agent's own
 * trial (60 s) and time for its launcher to go back and the old version to reconnect. */
export const DEFAULT_RECONNECT_WAIT_MS = 150_000;

export class AgentUpgrades {
  readonly #registry: NodeRegistry;
  readonly #releases: ReleaseStore;
  readonly #log: Logger;
  readonly #reconnectWaitMs: number;
  readonly #rollouts = new Map<string, RolloutView>();

  constructor(opts: { registry: NodeRegistry; releases: ReleaseStore; log: Logger; reconnectWaitMs?: number }) {
    this.#registry = opts.registry;
    this.#releases = opts.releases;
    this.#log = opts.log;
    this.#reconnectWaitMs = opts.reconnectWaitMs ?? DEFAULT_RECONNECT_WAIT_MS;
  }

  list(): RolloutView[] {
    return [...this.#rollouts.values()].reverse();
  }

  get(id: string): RolloutView | null {
    return this.#rollouts.get(id) ?? null;
  }

  /** Plans the rollout and starts it; resolves once planned (it runs on in the background). */
  async start(req: { to: string; parallel?: number | undefined; nodes?: string[] | undefined }): Promise<RolloutView> {
    if (this.#releases.releaseKey === null) throw new DockfleetError('release_key_missing', 'this hub has no release key (start it with --release-key)');
    if ([...this.#rollouts.values()].some((r) => r.state === 'running')) throw new DockfleetError('rollout_in_progress', 'an agent upgrade is already rolling out');
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
    const rollout: RolloutView = {
      id: randomUUID(),
      to: req.to,
      parallel,
      state: 'running',
      createdAt: new Date().toISOString(),
      finishedAt: null,
      nodes: names.map((node, i) => ({ node, wave: Math.floor(i / parallel) + 1, state: 'waiting', from: null, reason: null, startedAt: null, finishedAt: null })),
    };
    this.#rollouts.set(rollout.id, rollout);
    while (this.#rollouts.size > KEEP_ROLLOUTS) this.#rollouts.delete(this.#rollouts.keys().next().value!);
    void this.#run(rollout, release).catch((err: unknown) => this.#log.error({ err }, 'agent upgrade rollout failed'));
    return rollout;
  }

  async #run(rollout: RolloutView, release: { pkg: Buffer; signature: unknown }): Promise<void> {
    const waves = Math.max(...rollout.nodes.map((n) => n.wave));
    for (let wave = 1; wave <= waves; wave++) {
      const members = rollout.nodes.filter((n) => n.wave === wave);
      await Promise.all(members.map((n) => this.#upgradeNode(rollout.to, n, release)));
      if (members.some((n) => n.state === 'failed')) break;
    }
    for (const n of rollout.nodes) if (n.state === 'waiting') n.state = 'skipped';
    rollout.state = rollout.nodes.every((n) => n.state === 'succeeded') ? 'succeeded' : 'failed';
    rollout.finishedAt = new Date().toISOString();
    this.#log.info({ rollout: rollout.id, to: rollout.to, state: rollout.state }, 'agent upgrade rollout finished');
  }

  async #upgradeNode(to: string, n: NodeState, release: { pkg: Buffer; signature: unknown }): Promise<void> {
    n.startedAt = new Date().toISOString();
    const finish = (state: 'succeeded' | 'failed', reason: string | null): void => {
      n.state = state;
      n.reason = reason;
      n.finishedAt = new Date().toISOString();
      this.#log.info({ node: n.node, to, state, reason }, 'agent upgrade');
    };
    const node = this.#registry.byName(n.node);
    const link = node ? this.#registry.link(node.id) : null;
    if (!link) return finish('failed', 'the node is offline');
    n.from = link.agentVersion;
    if (link.agentVersion === to) return finish('succeeded', `already running ${to}`);
    n.state = 'sending';
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
    n.state = 'restarting';
    const relinked = await back.promise;
    if (!relinked) return finish('failed', `the node did not come back within ${Math.round(this.#reconnectWaitMs / 1000)} s`);
    if (relinked.agentVersion === to) return finish('succeeded', null);
    finish('failed', await this.#reasonFrom(relinked, to));
  }

  /** Why the node came back on another version, as its (old) agent tells. */
  async #reasonFrom(link: AgentLink, to: string): Promise<string> {
    try {
      const res = await link.requestJson({ method: 'GET', path: AGENT_UPGRADE_RESULT_PATH, timeoutMs: 10_000 });
      const result = upgradeResult.safeParse(res.body);
      if (res.status === 200 && result.success && result.data.to === to && !result.data.ok) {
        return `back on ${link.agentVersion}: ${result.data.reason ?? 'the new version failed'}`;
      }
    } catch {
      // The reason is a courtesy: the version the node came back on says enough.
    }
    return `the node came back on ${link.agentVersion}, not ${to}`;
  }

  /** The node's next link after `previous` (or null after the wait). */
  #nextLink(name: string, previous: AgentLink): { promise: Promise<AgentLink | null>; cancel: () => void } {
    let cancel = (): void => {};
    const promise = new Promise<AgentLink | null>((resolve) => {
      const onLinked = (link: AgentLink): void => {
        if (link.nodeName !== name || link === previous) return;
        done(link);
      };
      const timer = setTimeout(() => done(null), this.#reconnectWaitMs);
      const done = (link: AgentLink | null): void => {
        clearTimeout(timer);
        this.#registry.off('linked', onLinked);
        resolve(link);
      };
      cancel = () => done(null);
      this.#registry.on('linked', onLinked);
    });
    return { promise, cancel };
  }
}
