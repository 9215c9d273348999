/** The hub's audit log: who did what, where, when. Writes never fail the call they record. */
import type { AuditEntry, AuditQuery, Store } from '../store/store.ts';
import type { Logger } from '../lib/logger.ts';

const MAX_PATH = 1000;

export class AuditLog {
  readonly #store: Store;
  readonly #log: Logger;

  constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  record(entry: Omit<AuditEntry, 'at'> & { at?: number }): void {
    const row: AuditEntry = { ...entry, at: entry.at ?? Date.now(), path: entry.path.slice(0, MAX_PATH) };
    this.#store.appendAudit(row).catch((err) => this.#log.error({ err }, 'could not write the audit log'));
  }

  query(q: AuditQuery): Promise<Array<AuditEntry & { id: number }>> {
    return this.#store.queryAudit(q);
  }
}

/** Calls that change something are audited; reads are not. */
export function isMutating(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}
