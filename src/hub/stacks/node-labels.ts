/**
 * Node labels (`dockfleet label NODE key=value`): kept by node name in the store and in
 * memory, so node views and selector resolution read them without a query.
 */
import type { StackStore } from '../../store/stack-store.ts';

export class NodeLabels {
  readonly #store: StackStore;
  readonly #byNode = new Map<string, Record<string, string>>();

  constructor(store: StackStore) {
    this.#store = store;
  }

  async load(): Promise<void> {
    this.#byNode.clear();
    for (const row of await this.#store.listNodeLabels()) {
      const labels = this.#byNode.get(row.node) ?? {};
      labels[row.key] = row.value;
      this.#byNode.set(row.node, labels);
    }
  }

  /** A copy of the node's labels, keys sorted. */
  of(node: string): Record<string, string> {
    const labels = this.#byNode.get(node) ?? {};
    return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Sets (string) or removes (null) each key; stored first, then shown. */
  async change(node: string, changes: Record<string, string | null>): Promise<Record<string, string>> {
    await this.#store.setNodeLabels(node, changes);
    const labels = { ...(this.#byNode.get(node) ?? {}) };
    for (const [key, value] of Object.entries(changes)) {
      if (value === null) delete labels[key];
      else labels[key] = value;
    }
    if (Object.keys(labels).length === 0) this.#byNode.delete(node);
    else this.#byNode.set(node, labels);
    return this.of(node);
  }

  /** Names of the nodes (among `candidates`) that carry key=value, sorted. */
  select(key: string, value: string, candidates: Iterable<string>): string[] {
    return [...candidates].filter((n) => this.#byNode.get(n)?.[key] === value).sort();
  }
}
