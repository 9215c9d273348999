/** Plain SQL on either engine for store contract tests: set up rows a store expects (users,
 * nodes) or tamper behind a store's back, with one text using `?` placeholders (turned into
 * PostgreSQL's $1, $2 … for pg). Quote identifiers PostgreSQL reserves ("user"); SQLite accepts
 * the quotes too. */
import type Database from 'better-sqlite3';
import type { Queryable } from '../../src/store/postgres/db.ts';

export interface Raw {
  run(sql: string, values?: unknown[]): Promise<number>;
  rows<R>(sql: string, values?: unknown[]): Promise<R[]>;
}

export function sqliteRaw(db: Database.Database): Raw {
  return {
    run: async (sql, values = []) => db.prepare(sql).run(...values).changes,
    rows: async <R>(sql: string, values: unknown[] = []) => db.prepare(sql).all(...values) as R[],
  };
}

export function pgRaw(db: Queryable): Raw {
  const numbered = (sql: string): string => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${++n}`);
  };
  return {
    run: async (sql, values = []) => (await db.query(numbered(sql), values)).rowCount,
    rows: async <R>(sql: string, values: unknown[] = []) => (await db.query<R>(numbered(sql), values)).rows,
  };
}
