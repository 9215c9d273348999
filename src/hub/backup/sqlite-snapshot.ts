/**
 * A consistent copy of the hub's live database without stopping it: SQLite's online backup API
 * (better-sqlite3's `db.backup()`) on a read-only handle. In WAL mode the hub keeps writing while
 * the copy is made. SQLite restarts a backup whenever another connection writes between two steps,
 * so a busy hub could starve a copy made in small steps: each restart doubles the pages per step,
 * until one step (one read transaction) copies everything. A quiet hub is copied in small steps
 * and a process holding the hub's event loop (the schedule) is never blocked for long.
 */
import Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';

const FIRST_STEP_PAGES = 2048;

export interface SnapshotResult {
  /** The newest migration applied in the copy (the schema version), or null for a database without migrations. */
  schemaVersion: string | null;
  pages: number;
  restarts: number;
}

export async function snapshotDatabase(source: string, target: string): Promise<SnapshotResult> {
  let db: Database.Database;
  try {
    db = new Database(source, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
  } catch (err) {
    throw new DockfleetError('not_found', `cannot open the hub database ${source}: ${(err as Error).message}`);
  }
  let restarts = 0;
  try {
    let rate = FIRST_STEP_PAGES;
    let lastRemaining = Number.POSITIVE_INFINITY;
    const progress = await db.backup(target, {
      progress({ totalPages, remainingPages }) {
        if (remainingPages > lastRemaining) {
          restarts++;
          rate = Math.min(rate * 2, 0x7fffffff); // restarted by a write: take more per step
        }
        lastRemaining = remainingPages;
        return Math.max(rate, restarts > 6 ? totalPages : 0);
      },
    });
    return { schemaVersion: schemaVersionOf(target), pages: progress.totalPages, restarts };
  } finally {
    db.close();
  }
}

/** The newest applied migration of a database file (read-only), or null. */
export function schemaVersionOf(file: string): string | null {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return appliedMigrations(db).at(-1) ?? null;
  } finally {
    db.close();
  }
}

/** The migrations applied, in name order ([] when there is no schema_migrations table). */
export function appliedMigrations(db: Database.Database): string[] {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return [];
  return (db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as Array<{ name: string }>).map((r) => r.name);
}
