/**
 * The incident book: turns the sources' conditions into incidents, one per condition. A key
 * that is raised opens an incident once (stored with its `opened` deliveries in one
 * transaction); raising it again only updates what it says; clearing it resolves it and files
 * the `resolved` deliveries. Open incidents are loaded at start, so a restarted hub continues
 * them rather than opening them again. Changes to one key are applied in order.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AlertStore, IncidentRecord } from '../../store/alert-store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Condition, ConditionSink } from './alert-source.ts';

export interface IncidentBookEvents {
  /** An incident opened, changed or resolved; deliveries may be due. */
  changed: [incident: IncidentRecord];
}

export class IncidentBook extends EventEmitter<IncidentBookEvents> implements ConditionSink {
  readonly #store: AlertStore;
  readonly #log: Logger;
  readonly #open = new OpenIncidents();
  /** Raises waiting in the queue, by key: a source that says it again meanwhile (every second, for
   * thousands of nodes) updates the waiting one instead of queueing another. */
  readonly #waiting = new Map<string, { c: Condition }>();
  #queue: Promise<void> = Promise.resolve();

  constructor(store: AlertStore, log: Logger) {
    super();
    this.#store = store;
    this.#log = log;
  }

  /** Reads the open incidents from the store (at start, and when this replica takes over judging). */
  async load(): Promise<void> {
    const open = await this.#store.openIncidents();
    this.#open.clear();
    this.#waiting.clear();
    for (const incident of open) this.#open.set(incident.key, incident);
  }

  /** Resolves when every change asked for so far is stored (tests, close). */
  settled(): Promise<void> {
    return this.#queue;
  }

  raise(kind: string, c: Condition): void {
    const current = this.#open.get(c.key);
    if (current && current.title === c.title && current.detail === c.detail && current.severity === c.severity) return;
    const queued = this.#waiting.get(c.key);
    if (queued) {
      queued.c = c;
      return;
    }
    const entry = { c };
    this.#waiting.set(c.key, entry);
    this.#enqueue(async () => {
      // Cleared (or cleared and raised again) while it waited: that later word stands.
      if (this.#waiting.get(entry.c.key) !== entry) return;
      this.#waiting.delete(entry.c.key);
      c = entry.c;
      const open = this.#open.get(c.key);
      const now = Date.now();
      if (open) {
        if (open.title === c.title && open.detail === c.detail && open.severity === c.severity) return;
        await this.#store.updateIncident(open.id, { title: c.title, detail: c.detail, severity: c.severity, updatedAt: now });
        const updated = { ...open, title: c.title, detail: c.detail, severity: c.severity, updatedAt: now };
        this.#open.set(c.key, updated);
        this.emit('changed', updated);
        return;
      }
      const incident: IncidentRecord = {
        id: `inc_${randomUUID()}`,
        key: c.key,
        kind,
        severity: c.severity,
        node: c.node,
        subject: c.subject,
        title: c.title,
        detail: c.detail,
        state: 'open',
        openedAt: now,
        updatedAt: now,
        resolvedAt: null,
      };
      const receivers = await this.#enabledReceivers();
      if (
        !(await this.#store.openIncident(
          incident,
          receivers,
          receivers.map(() => randomUUID()),
        ))
      )
        return;
      this.#open.set(c.key, incident);
      this.#log.info({ incident: incident.id, key: c.key }, 'incident opened');
      this.emit('changed', incident);
    });
  }

  clear(key: string): void {
    this.#waiting.delete(key);
    if (!this.#open.has(key)) return;
    this.#enqueue(async () => {
      const open = this.#open.get(key);
      if (!open) return;
      const now = Date.now();
      const receivers = await this.#enabledReceivers();
      await this.#store.resolveIncident(
        open.id,
        now,
        receivers,
        receivers.map(() => randomUUID()),
      );
      this.#open.delete(key);
      this.#log.info({ incident: open.id, key }, 'incident resolved');
      this.emit('changed', { ...open, state: 'resolved', resolvedAt: now, updatedAt: now });
    });
  }

  clearOthers(prefix: string, holding: ReadonlySet<string>): void {
    // clear() only queues the change: nothing leaves #open while this walks it.
    for (const [key] of this.#open.withPrefix(prefix)) if (!holding.has(key)) this.clear(key);
  }

  openKeys(prefix: string): Map<string, number> {
    const keys = new Map<string, number>();
    for (const [key, incident] of this.#open.withPrefix(prefix)) keys.set(key, incident.updatedAt);
    return keys;
  }

  async #enabledReceivers(): Promise<string[]> {
    return (await this.#store.listReceivers()).filter((r) => r.enabled).map((r) => r.id);
  }

  #enqueue(step: () => Promise<void>): void {
    this.#queue = this.#queue.then(step).catch((err: unknown) => {
      // The condition is raised again on the source's next look; nothing is lost for good.
      this.#log.error({ err }, 'could not store an incident change');
    });
  }
}

/**
 * Open incidents by key, also grouped by kind (the key up to its first colon): a source asks for
 * its own prefix once per node, and 10,000 open node-offline incidents must not make each
 * container look walk them all.
 */
class OpenIncidents {
  readonly #byKey = new Map<string, IncidentRecord>();
  readonly #byKind = new Map<string, Map<string, IncidentRecord>>();

  static #kind(key: string): string {
    const colon = key.indexOf(':');
    return colon < 0 ? key : key.slice(0, colon);
  }

  get(key: string): IncidentRecord | undefined {
    return this.#byKey.get(key);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  set(key: string, incident: IncidentRecord): void {
    this.#byKey.set(key, incident);
    const kind = OpenIncidents.#kind(key);
    let group = this.#byKind.get(kind);
    if (!group) this.#byKind.set(kind, (group = new Map()));
    group.set(key, incident);
  }

  clear(): void {
    this.#byKey.clear();
    this.#byKind.clear();
  }

  delete(key: string): void {
    this.#byKey.delete(key);
    const kind = OpenIncidents.#kind(key);
    const group = this.#byKind.get(kind);
    group?.delete(key);
    if (group?.size === 0) this.#byKind.delete(kind);
  }

  /** Open incidents whose key starts with `prefix` (a prefix without a colon walks them all). */
  *withPrefix(prefix: string): Generator<[string, IncidentRecord]> {
    const colon = prefix.indexOf(':');
    const within = colon < 0 ? this.#byKey : (this.#byKind.get(prefix.slice(0, colon)) ?? new Map<string, IncidentRecord>());
    for (const entry of within) if (entry[0].startsWith(prefix)) yield entry;
  }
}
