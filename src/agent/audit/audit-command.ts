/**
 * `dockfleet agent audit --state DIR [--verify] [--json]`: the host's own audit log, read on the
 * host with no hub at all. Without --verify it shows every entry (a table, or one JSON array with
 * --json) and warns on stderr when the chain is broken; with --verify it walks the chain and exits
 * 0 when it holds, or 1 with one line naming the first bad entry's line and seq and what is wrong.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../../cli/command.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { AGENT_DEFAULTS } from '../config.ts';
import { AUDIT_FILE, parseEntryLine, type AuditEntry } from './audit-entry.ts';
import { verifyAuditBytes, type AuditReport } from './verify-audit.ts';

export { AGENT_AUDIT_USAGE } from './audit-usage.ts';

export async function runAgentAudit(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { state: { type: 'string' }, verify: { type: 'boolean' }, json: { type: 'boolean' } },
  });
  if (positionals.length > 0) throw new UsageError(`agent audit takes no arguments (got "${positionals[0]}")`);
  const path = join(resolve(values.state ?? AGENT_DEFAULTS.state), AUDIT_FILE);
  const bytes = await readLog(path);
  // Verifying needs no parsed entries (the raw-byte scan is enough); showing parses each line.
  const report = verifyAuditBytes(bytes, { entries: false });
  if (values.verify) return printVerdict(path, report, values.json === true);
  const entries = readableEntries(bytes);
  process.stdout.write(values.json ? `${JSON.stringify(entries)}\n` : table(entries));
  if (report.problem) process.stderr.write(`warning: ${path}: the chain is broken at ${report.problem.message} (run with --verify)\n`);
}

async function readLog(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DockfleetError('not_found', `no audit log at ${path} (the agent writes it in its --state directory)`);
    throw new DockfleetError('bad_request', `cannot read ${path}: ${(err as Error).message}`);
  }
}

function printVerdict(path: string, report: AuditReport, json: boolean): void {
  const { problem, head, tears, count } = report;
  if (json) {
    process.stdout.write(`${JSON.stringify({ ok: problem === null, path, entries: count, head, tears, problem })}\n`);
    if (!problem) return;
  }
  // Exit 1 through the CLI's one-line error (after the JSON verdict when --json asked for it).
  if (problem) throw new DockfleetError('state_corrupt', `${path}: ${problem.message}`);
  const torn = tears.length === 0 ? '' : `; ${tears.length} recorded tear${tears.length === 1 ? '' : 's'} (line ${tears.map((t) => t.line).join(', ')}: a write cut off by a crash, kept as written)`;
  process.stdout.write(`ok: ${count} entries, the chain holds to seq ${head.seq} (hash ${head.hash})${torn}\n`);
}

/** Every line that holds an entry, whether or not the chain holds (showing is not verifying). */
function readableEntries(bytes: Buffer): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of bytes.toString('utf8').split('\n')) {
    const entry = line === '' ? null : parseEntryLine(line);
    if (entry) out.push(entry);
  }
  return out;
}

function table(entries: AuditEntry[]): string {
  const rows = [['SEQ', 'TIME', 'RESULT', 'OPERATION', 'TARGET', 'USER', 'KEY', 'DETAIL']];
  for (const e of entries) {
    const detail = [e.status === undefined ? '' : String(e.status), e.reason ?? '', e.ref ? `ref ${e.ref}` : ''].filter(Boolean).join(' ');
    rows.push([String(e.seq), e.time, e.result, e.op, e.target, e.user ?? '-', e.key ? shortKey(e.key) : '-', oneLine(detail)]);
  }
  const widths = rows[0]!.map((_, i) => Math.min(60, Math.max(...rows.map((r) => r[i]!.length))));
  return `${rows
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** `ed25519:AbCdEf…` — enough to tell keys apart in a table (--json has the whole key). */
function shortKey(key: string): string {
  return key.length > 20 ? `${key.slice(0, 18)}…` : key;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ');
}
