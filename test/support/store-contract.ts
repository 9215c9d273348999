/**
 * Runs one store contract against both engines: each test gets a fresh SQLite file in a temp
 * dir (migrated by the SQLite migrator, foreign keys on as the hub opens it) and a fresh
 * PostgreSQL database (migrated by the Postgres migrator) on a private server started once per
 * test file. A test that fails on SQLite is a wrong test: SQLite is the reference.
 *
 *   const jobs = storeContract('jobs', { sqlite: (db) => new SqliteJobStore(db), postgres: (db) => new PostgresJobStore(db) });
 *   jobs.test('a repeated key files one job', async (store) => { … });
 *   jobs.postgresTest('two replicas claim once', async ({ store, replica }) => { … });
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { PgDb } from '../../src/store/postgres/db.ts';
import { applyPostgresMigrations } from '../../src/store/postgres/migrate.ts';
import { applyMigrations } from '../../src/store/sqlite/migrate.ts';
import { type PostgresServer, postgresMissing, startPostgres } from './postgres.ts';

export type EngineName = 'sqlite' | 'postgres';

/** Runs SQL with `?` placeholders on the test's database, whichever engine: for rows a store's
 * interface does not write (users, tokens, codes, sessions). */
export type RawSql = <R = Record<string, unknown>>(text: string, ...params: unknown[]) => Promise<R[]>;

export interface StoreMakers<S> {
  sqlite(db: Database.Database): S;
  postgres(db: PgDb): S;
}

export interface PostgresContext<S> {
  store: S;
  db: PgDb;
  /** Another store on the same database through its own pool: a second hub replica. */
  replica(): S;
}

let server: Promise<PostgresServer> | undefined;
after(async () => {
  if (server) await (await server).stop();
});

/** The file's private server, started by the first test that needs it. */
function postgresServer(): Promise<PostgresServer> {
  server ??= startPostgres();
  return server;
}

type Cleanup = () => Promise<void> | void;

async function openSqlite(cleanups: Cleanup[]): Promise<Database.Database> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-contract-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const db = new Database(join(dir, 'hub.sqlite'));
  cleanups.push(() => void db.close());
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  applyMigrations(db);
  return db;
}

async function openPostgres(cleanups: Cleanup[]): Promise<{ db: PgDb; url: string }> {
  const url = await (await postgresServer()).freshDatabase();
  const db = new PgDb(url);
  cleanups.push(() => db.close());
  await applyPostgresMigrations(db);
  return { db, url };
}

async function runCleanups(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup();
}

export function storeContract<S>(title: string, make: StoreMakers<S>) {
  const pgSkip = postgresMissing() ?? false;
  return {
    /** The same test against SQLite and PostgreSQL. */
    test(name: string, fn: (store: S, engine: EngineName, sql: RawSql) => Promise<void>): void {
      test(`${title} [sqlite]: ${name}`, async () => {
        const cleanups: Cleanup[] = [];
        try {
          const db = await openSqlite(cleanups);
          const sql: RawSql = async <R>(text: string, ...params: unknown[]) => {
            const statement = db.prepare(text);
            return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as R[];
          };
          await fn(make.sqlite(db), 'sqlite', sql);
        } finally {
          await runCleanups(cleanups);
        }
      });
      test(`${title} [postgres]: ${name}`, { skip: pgSkip }, async () => {
        const cleanups: Cleanup[] = [];
        try {
          const { db } = await openPostgres(cleanups);
          const sql: RawSql = async <R>(text: string, ...params: unknown[]) => {
            let n = 0;
            return (
              await db.query<R>(
                text.replace(/\?/g, () => `$${++n}`),
                params,
              )
            ).rows;
          };
          await fn(make.postgres(db), 'postgres', sql);
        } finally {
          await runCleanups(cleanups);
        }
      });
    },
    /** PostgreSQL only: what several replicas on one database must agree on. */
    postgresTest(name: string, fn: (ctx: PostgresContext<S>) => Promise<void>): void {
      test(`${title} [postgres]: ${name}`, { skip: pgSkip }, async () => {
        const cleanups: Cleanup[] = [];
        try {
          const { db, url } = await openPostgres(cleanups);
          const replica = (): S => {
            const other = new PgDb(url);
            cleanups.push(() => other.close());
            return make.postgres(other);
          };
          await fn({ store: make.postgres(db), db, replica });
        } finally {
          await runCleanups(cleanups);
        }
      });
    },
  };
}
