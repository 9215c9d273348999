/**
 * The hub's audit log: who did what, where, when. A call that changes something is recorded in
 * two steps: its intent, durably, before it is forwarded (so a hub killed mid-call leaves the
 * row behind, with its start time), and its outcome after. When the intent cannot be written,
 * `begin` throws (storage_full) and the caller refuses the call: nothing acts unaudited.
 */
import type { AuditEntry, AuditQuery, AuditRow, Store } from '../store/store.ts';
import { DockfleetError, toDockfleetError } from '../protocol/errors.ts';
import type { Logger } from '../lib/logger.ts';

const MAX_PATH = 1000;

/** ok and failed come from the status; running: the call is still going on in this hub;
 * interrupted: it started before this hub did and never got an outcome (a crash, a kill). */
export type AuditOutcomeName = 'ok' | 'failed' | 'running' | 'interrupted';

export interface AuditIntentInput {
  user: string;
  node: string | null;
  method: string;
  path: string;
}

/** One recorded intent; `finish` writes its outcome once (later calls are ignored). */
export interface AuditCall {
  readonly id: number;
  readonly startedAt: number;
  finish(status: number, bytes?: number | null): void;
}

export interface AuditView extends Omit<AuditRow, 'finishedAt'> {
  startedAt: string;
  finishedAt: string | null;
  outcome: AuditOutcomeName;
}

export class AuditLog {
  readonly #store: Store;
  readonly #log: Logger;
  /** Rows without an outcome that started before this are from an earlier run of the hub. */
  readonly #bootedAt = Date.now();
  #writeFailures = 0;

  constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** A call that is already over, in one step. Never fails the caller (sign-in attempts). */
  record(entry: Omit<AuditEntry, 'at'> & { at?: number }): void {
    const row: AuditEntry = { ...entry, at: entry.at ?? Date.now(), path: entry.path.slice(0, MAX_PATH) };
    this.#store.appendAudit(row).catch((err) => (this.#writeFailures++, this.#log.error({ err }, 'could not write the audit log')));
  }

  /** Writes the intent before the call goes on; throws (storage_full) when it cannot. */
  async begin(intent: AuditIntentInput): Promise<AuditCall> {
    const startedAt = Date.now();
    let id: number;
    try {
      id = await this.#store.beginAudit({ ...intent, path: intent.path.slice(0, MAX_PATH), startedAt });
    } catch (err) {
      this.#writeFailures++;
      this.#log.error({ err, code: toDockfleetError(err).code }, 'could not write the audit log: refusing the call');
      // Same refusal, honest reason: a database that cannot be reached is not a full disk.
      if (err instanceof DockfleetError && err.code === 'store_unavailable') throw err;
      throw new DockfleetError('storage_full', 'the hub cannot write its audit log (its storage is full, failing or read-only), so it refuses changes until it can; reads go on', { cause: err });
    }
    let done = false;
    return {
      id,
      startedAt,
      finish: (status, bytes = null) => {
        if (done) return;
        done = true;
        this.#store
          .finishAudit(id, { status, finishedAt: Date.now(), bytes })
          .catch((err) => (this.#writeFailures++, this.#log.error({ err, id }, 'could not write an audit outcome; the row reads as interrupted')));
      },
    };
  }

  /** Rows (intents, outcomes, records) the hub could not write since it started (metrics). */
  get writeFailures(): number {
    return this.#writeFailures;
  }

  async query(q: AuditQuery): Promise<AuditView[]> {
    const rows = await this.#store.queryAudit(q);
    return rows.map((r) => ({
      ...r,
      startedAt: new Date(r.at).toISOString(),
      finishedAt: r.finishedAt === null ? null : new Date(r.finishedAt).toISOString(),
      outcome: r.status !== null ? (r.status >= 400 ? 'failed' : 'ok') : r.at < this.#bootedAt ? 'interrupted' : 'running',
    }));
  }
}

/** Calls that change something are audited; reads are not. */
export function isMutating(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}
