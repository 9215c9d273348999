/**
 * Nodes offline: an approved node whose agent has been away longer than a grace period
 * (default 30 s; a reconnect within it raises nothing). The clock starts at the latest of the
 * node's last heartbeat, its enrollment (or approval) and the hub's own start, so restarting the
 * hub does not turn every node that has not reconnected yet into an incident, nor is a node
 * enrolled a moment ago that has not connected yet. Revoked nodes raise nothing.
 */
import type { NodeRegistry } from '../../node-registry.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'node-offline';
const TICK_MS = 1_000;
const CHANGED_DELAY_MS = 100;

export class NodeOfflineSource implements AlertSource {
  readonly kind = KIND;
  readonly #registry: NodeRegistry;
  readonly #graceMs: number;
  readonly #startedAt = Date.now();
  /** node name → when the hub last saw it online (this process). */
  readonly #seenOnline = new Map<string, number>();

  constructor(registry: NodeRegistry, graceMs: number) {
    this.#registry = registry;
    this.#graceMs = graceMs;
  }

  start(sink: ConditionSink): () => void {
    const look = (): void => this.#look(sink);
    // A look walks every node: a burst of changes (a fleet reconnecting) gets one, shortly after.
    let soon: NodeJS.Timeout | null = null;
    const lookSoon = (): void => {
      soon ??= setTimeout(() => {
        soon = null;
        look();
      }, CHANGED_DELAY_MS);
    };
    this.#registry.on('changed', lookSoon);
    const timer = setInterval(look, Math.min(TICK_MS, this.#graceMs)).unref();
    look();
    return () => {
      clearInterval(timer);
      if (soon) clearTimeout(soon);
      this.#registry.off('changed', lookSoon);
    };
  }

  #look(sink: ConditionSink): void {
    const now = Date.now();
    const holding = new Set<string>();
    for (const view of this.#registry.list()) {
      const key = `${KIND}:${view.name}`;
      if (view.status === 'online') {
        this.#seenOnline.set(view.name, now);
        continue;
      }
      if (view.status !== 'offline') continue;
      const lastSeen = view.lastSeen === null ? 0 : Date.parse(view.lastSeen);
      // A node enrolled a moment ago has not had the time to connect yet.
      const record = this.#registry.byName(view.name);
      const activeSince = Math.max(record?.createdAt ?? 0, record?.approvedAt ?? 0);
      const since = Math.max(this.#seenOnline.get(view.name) ?? 0, Number.isNaN(lastSeen) ? 0 : lastSeen, this.#startedAt, activeSince);
      const open = sink.openKeys(key).has(key);
      if (!open && now - since < this.#graceMs) continue;
      holding.add(key);
      const last = view.lastSeen ? `last seen ${view.lastSeen}` : 'never seen';
      sink.raise(KIND, { key, severity: 'critical', node: view.name, subject: view.name, title: `Node ${view.name} is offline`, detail: `The agent on ${view.name} is not connected (${last}).` });
    }
    sink.clearOthers(`${KIND}:`, holding);
  }
}
