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

  /** Walks the records, not the API's views: at 10,000 nodes a look runs every second. */
  #look(sink: ConditionSink): void {
    const now = Date.now();
    const open = sink.openKeys(`${KIND}:`);
    const holding = new Set<string>();
    for (const node of this.#registry.records()) {
      const status = this.#registry.status(node);
      if (status === 'online') {
        this.#seenOnline.set(node.name, now);
        continue;
      }
      if (status !== 'offline') continue;
      const key = `${KIND}:${node.name}`;
      // A node enrolled (or approved) a moment ago has not had the time to connect yet.
      const since = Math.max(this.#seenOnline.get(node.name) ?? 0, node.lastSeen ?? 0, this.#startedAt, node.createdAt, node.approvedAt ?? 0);
      if (!open.has(key) && now - since < this.#graceMs) continue;
      holding.add(key);
      const last = node.lastSeen === null ? 'never seen' : `last seen ${new Date(node.lastSeen).toISOString()}`;
      sink.raise(KIND, { key, severity: 'critical', node: node.name, subject: node.name, title: `Node ${node.name} is offline`, detail: `The agent on ${node.name} is not connected (${last}).` });
    }
    sink.clearOthers(`${KIND}:`, holding);
  }
}
