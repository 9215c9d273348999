/** StackStore on the hub's SQLite database (tables from the stacks migration). */
import type Database from 'better-sqlite3';
import type { StackStore } from '../stack-store.ts';
import { StatementCache, translateStorageFailures } from './statement-cache.ts';

export class SqliteStackStore implements StackStore {
  readonly kind = 'stacks' as const;
  readonly #sql: StatementCache;

  constructor(db: Database.Database) {
    this.#sql = new StatementCache(db);
  }
}
translateStorageFailures(SqliteStackStore);
