/** JobStore on the hub's SQLite database (tables from the jobs migration). */
import type Database from 'better-sqlite3';
import type { JobStore } from '../job-store.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

export class SqliteJobStore implements JobStore {
  readonly kind = 'jobs' as const;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }
}
translateStorageFailures(SqliteJobStore);
