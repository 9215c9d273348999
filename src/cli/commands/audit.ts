/**
 * `dockfleet audit verify --data DIR [--json]`: checks the hub's own audit log against its hash
 * chain, reading the hub's database directly (DIR's SQLite file, or with --store the PostgreSQL
 * database the replicas share) (on the hub's machine; no hub process needed, and a
 * running hub is not disturbed: the file is opened read-only). Exit 0 when it holds; 1 with one line
 * naming the first edited, deleted, inserted or reordered entry. The same check over REST:
 * GET /api/v1/audit/verify (admins).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DockfleetError } from '../../protocol/errors.ts';
import { DATABASE_FILE } from '../../hub/run-hub.ts';
import { verifyHubAuditPostgres } from '../../hub/audit-chain/postgres-verify-hub-audit.ts';
import { type HubAuditReport, verifyHubAudit } from '../../hub/audit-chain/verify-hub-audit.ts';
import { PgDb } from '../../store/postgres/db.ts';
import { UsageError, type Command } from '../command.ts';

export const auditCommand: Command = {
  summary: "verify the hub's own audit log (its hash chain)",
  usage: `dockfleet audit verify [--data DIR | --store postgres://…] [--json]

Checks every row of the hub's audit log against its hash chain: exit 0 when it holds, 1 naming the
first row that was edited, deleted or added behind the hub's back, or the first chain entry that
was edited, removed or reordered. Reads DIR/${DATABASE_FILE} on the hub's machine, read-only; or
the PostgreSQL database the hub replicas share (--store, or DOCKFLEET_STORE), in one read-only snapshot.

  --data DIR   the hub's state (default ./data)
  --store URL  the hub's PostgreSQL database instead (postgres://…; its password is never shown)
  --json      one JSON object with the verdict`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { data: { type: 'string' }, store: { type: 'string' }, json: { type: 'boolean' } } });
    if (positionals[0] !== 'verify' || positionals.length !== 1) throw new UsageError('use: dockfleet audit verify [--data DIR | --store URL] [--json]');
    const store = values.store ?? process.env.DOCKFLEET_STORE;
    const { report, path } = store !== undefined && store !== '' && store !== 'sqlite' ? await verifyPostgres(store) : verifySqlite(join(resolve(values.data ?? './data'), DATABASE_FILE));
    if (values.json) process.stdout.write(`${JSON.stringify({ ...report, path })}\n`);
    // Exit 1 through the CLI's one-line error (after the JSON verdict when --json asked for it).
    if (report.problem) throw new DockfleetError('state_corrupt', `${path}: ${report.problem.message}`);
    if (!values.json) process.stdout.write(`ok: ${report.rows} audit rows match ${report.entries} chain entries; the chain holds to seq ${report.head.seq} (hash ${report.head.hash})\n`);
  },
};

async function verifyPostgres(url: string): Promise<{ report: HubAuditReport; path: string }> {
  const db = new PgDb(url);
  try {
    return { report: await verifyHubAuditPostgres(db), path: db.where };
  } finally {
    await db.close();
  }
}

function verifySqlite(file: string): { report: HubAuditReport; path: string } {
  if (!existsSync(file)) throw new DockfleetError('not_found', `no hub database at ${file} (the hub keeps it in its --data directory)`);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new DockfleetError('bad_request', `cannot open ${file}: ${(err as Error).message}`);
  }
  try {
    return { report: verifyHubAudit(db), path: file };
  } finally {
    db.close();
  }
}
