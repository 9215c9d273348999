/** What every SQLite store class shares: prepared statements kept per SQL text, and one
 * translation of SQLite's storage failures into `storage_full`. */
import type Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';

export class StatementCache {
  readonly db: Database.Database;
  /** Prepared once per SQL text: preparing costs more than running most of these queries. */
  readonly #statements = new Map<string, Database.Statement>();

  constructor(db: Database.Database) {
    this.db = db;
  }

  get(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) this.#statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }
}

/** SQLite's codes for a disk that is full, failing or read-only (extended codes start with these). */
const STORAGE_FAILURES = ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN'];

function storageFailure(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !STORAGE_FAILURES.some((c) => code.startsWith(c))) return err;
  return new DockfleetError('storage_full', 'the hub cannot write to its storage (disk full, failing or read-only); changes are refused until it can', { cause: err });
}

/** Wraps every async method of a store class, so whatever SQLite statement fails for lack of
 * storage, the caller sees storage_full instead of an internal error. */
export function translateStorageFailures(cls: { prototype: object }): void {
  const proto = cls.prototype as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = proto[name];
    if (name === 'constructor' || typeof method !== 'function') continue;
    proto[name] = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      } catch (err) {
        throw storageFailure(err);
      }
    };
  }
}
