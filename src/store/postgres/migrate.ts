/** Applies the SQLite migrations (src/store/sqlite/migrations/, the one source of the schema) to
 * PostgreSQL, translated by ./translate.ts: in name order, each in one transaction, recorded in
 * schema_migrations exactly as the SQLite runner records them. Every transaction takes the same
 * advisory lock first, so replicas starting at once apply each migration once: the second waits,
 * then finds it recorded. Reports the names it applied. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PgDb } from './db.ts';
import { translateMigration } from './translate.ts';

export const SQLITE_MIGRATIONS_DIR = fileURLToPath(new URL('../sqlite/migrations/', import.meta.url));
const NAME_PATTERN = /^\d{8}T\d{6}-[a-z0-9-]+\.sql$/;
/** pg_advisory_xact_lock key for schema changes ("dock" in ASCII). */
const MIGRATION_LOCK = 0x646f636b;

/** The migration files in order, each translated (throws on a file no rule covers). */
export function translatedMigrations(dir = SQLITE_MIGRATIONS_DIR): Array<{ name: string; statements: string[] }> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  return files.map((name) => {
    if (!NAME_PATTERN.test(name)) throw new Error(`migration file name ${name} is not <YYYYMMDDTHHMMSS>-<name>.sql`);
    try {
      return { name, statements: translateMigration(readFileSync(dir + name, 'utf8')) };
    } catch (err) {
      throw new Error(`migration ${name}: ${(err as Error).message}`, { cause: err });
    }
  });
}

export async function applyPostgresMigrations(db: PgDb, dir = SQLITE_MIGRATIONS_DIR): Promise<string[]> {
  const migrations = translatedMigrations(dir);
  await db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await q.query('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)');
  });
  const applied: string[] = [];
  for (const { name, statements } of migrations) {
    const ran = await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const done = await q.query('SELECT 1 FROM schema_migrations WHERE name = $1', [name]);
      if (done.rowCount > 0) return false;
      for (const statement of statements) await q.query(statement);
      await q.query('INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)', [name, Date.now()]);
      return true;
    });
    if (ran) applied.push(name);
  }
  return applied;
}
