/** Applies timestamp-named SQL files from ./migrations in name order, each in a transaction,
 * recording what ran in schema_migrations. Reports the names it applied. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const NAME_PATTERN = /^\d{8}T\d{6}-[a-z0-9-]+\.sql$/;

export function applyMigrations(db: Database.Database, dir = MIGRATIONS_DIR): string[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const done = new Set(
    db
      .prepare('SELECT name FROM schema_migrations')
      .all()
      .map((row) => (row as { name: string }).name),
  );
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const applied: string[] = [];
  for (const file of files) {
    if (!NAME_PATTERN.test(file)) throw new Error(`migration file name ${file} is not <YYYYMMDDTHHMMSS>-<name>.sql`);
    if (done.has(file)) continue;
    const sql = readFileSync(dir + file, 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(file, Date.now());
    })();
    applied.push(file);
  }
  return applied;
}
