/**
 * Reads the host's audit log back and walks its chain (`dockfleet agent audit --verify`): every
 * entry's hash must match its content (else it was edited), its seq must follow the one before
 * (else one was removed or the lines reordered) and its `prev` must be that entry's hash. The first
 * break is reported with its line number and seq. A tear (a line cut off by a crash) is accepted
 * only where the agent recorded it with a marker entry naming that line and its exact bytes.
 *
 * Each line is read as raw bytes by scan-entry-line.ts (hash over the bytes as written, seq and prev
 * picked out by a strict scan): no JSON.parse on the way unless a line fails the scan, when it is
 * parsed once to tell an entry in another form (edited) from a line that is no entry (unreadable,
 * torn). The parsed entries are built only when the caller asks for them (`entries: true`).
 *
 * Removing entries from the very end leaves a shorter chain that still holds: that is what the
 * head the agent reports to its hub is for.
 */
import { readFile } from 'node:fs/promises';
import { GENESIS, parseEntryLine, sha256Hex, type AuditEntry, type TearRecord } from './audit-entry.ts';
import { scanEntryLine } from './scan-entry-line.ts';

export type AuditProblemKind = 'edited' | 'seq-gap' | 'prev-mismatch' | 'unreadable' | 'torn' | 'tear-mismatch';

export interface AuditProblem {
  kind: AuditProblemKind;
  /** 1-based line number in the file. */
  line: number;
  /** The entry's seq when the line holds one; otherwise null (see `after`). */
  seq: number | null;
  /** The seq of the last good entry before this line (0 at the start). */
  after: number;
  message: string;
}

export interface AuditReport {
  /** How many entries hold, in file order (up to the first problem when there is one). */
  count: number;
  /** Those entries, parsed — only when asked for (`{ entries: true }`, the default); else empty. */
  entries: AuditEntry[];
  head: { seq: number; hash: string };
  /** Tears the agent recorded, each with the marker that names it. */
  tears: TearRecord[];
  problem: AuditProblem | null;
}

const NL = 0x0a;

/** Walks the log's bytes. Pure: the CLI and the tests hand it a file's contents. */
export function verifyAuditBytes(bytes: Buffer, opts: { entries?: boolean } = {}): AuditReport {
  const keep = opts.entries !== false;
  const entries: AuditEntry[] = [];
  const tears: TearRecord[] = [];
  let count = 0;
  let head = { seq: 0, hash: GENESIS };
  // An unreadable line waits here: the very next line must be the marker that records it.
  let pending: { line: number; bytes: Buffer } | null = null;
  const fail = (kind: AuditProblemKind, line: number, seq: number | null, why: string): AuditReport => {
    const where = seq === null ? `line ${line} (after seq ${head.seq})` : `line ${line} (seq ${seq})`;
    return { count, entries, head, tears, problem: { kind, line, seq, after: head.seq, message: `${where}: ${why}` } };
  };
  const tornText = (n: number): string => `torn last line (${n} bytes cut off mid-write); the agent records the tear when it next starts`;
  let line = 0;
  for (let start = 0; start < bytes.length; ) {
    line++;
    const nl = bytes.indexOf(NL, start);
    const end = nl === -1 ? bytes.length : nl;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const entry = scanEntryLine(raw);
    // The last line has no newline: a write cut off that no start of the agent has recorded yet.
    if (nl === -1 && !entry?.hashOk) return fail('torn', line, null, tornText(raw.length));
    if (pending) {
      if (!entry?.tearOp || !entry.tear) return fail('unreadable', pending.line, null, 'not an audit entry: the line was edited or damaged');
      if (entry.tear.line !== pending.line || entry.tear.bytes !== pending.bytes.length || entry.tear.sha256 !== sha256Hex(pending.bytes)) {
        return fail('tear-mismatch', pending.line, null, `the torn line does not match the tear recorded at line ${line}: it was edited`);
      }
    }
    if (!entry) {
      if (pending) return fail('unreadable', line, null, 'not an audit entry: the line was edited or damaged');
      // Not in canonical form: an entry written some other way was edited; anything else is no entry.
      const other = parseEntryLine(raw.toString('utf8'));
      if (other) return fail('edited', line, other.seq, 'not in the form the agent writes (canonical JSON, hash last): the entry was edited');
      pending = { line, bytes: Buffer.from(raw) };
      continue;
    }
    if (entry.tear && !pending) return fail('tear-mismatch', line, entry.seq, `a tear marker names line ${entry.tear.line}, which is not a torn line`);
    if (!entry.hashOk) return fail('edited', line, entry.seq, 'hash mismatch: the entry was edited');
    if (entry.seq !== head.seq + 1) {
      return fail('seq-gap', line, entry.seq, `seq gap: expected seq ${head.seq + 1}, so an entry was removed or the entries reordered`);
    }
    if (entry.prev !== head.hash) return fail('prev-mismatch', line, entry.seq, `prev does not match the hash of seq ${head.seq}: an entry was removed or the entries reordered`);
    if (pending && entry.tear) tears.push(entry.tear);
    pending = null;
    count++;
    if (keep) entries.push(JSON.parse(raw.toString('utf8')) as AuditEntry);
    head = { seq: entry.seq, hash: entry.hash };
  }
  // A damaged line with nothing after it: its newline was written but not yet its marker.
  if (pending) return fail('torn', pending.line, null, tornText(pending.bytes.length));
  return { count, entries, head, tears, problem: null };
}

/** Reads and walks the log file at `path`. */
export async function verifyAuditFile(path: string, opts: { entries?: boolean } = {}): Promise<AuditReport> {
  return verifyAuditBytes(await readFile(path), opts);
}
