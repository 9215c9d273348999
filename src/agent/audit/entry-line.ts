/**
 * How an entry of the host's audit log becomes a line (the writer's half; scan-entry-line.ts reads
 * it back). The line is the canonical JSON of the entry without `hash` (keys sorted, no whitespace:
 * canonicalJson), with `hash` appended as its last member:
 *
 *     {"op":…,"prev":"<64 hex>","result":…,"seq":7,"target":…,"time":…,"hash":"<64 hex>"}
 *
 * and `hash` = SHA-256 (hex) of exactly the line's bytes without that member — i.e. the bytes before
 * `,"hash":` followed by `}`, which are the canonical JSON. So the verifier hashes the raw bytes it
 * read, with no parsing and no re-serialising, and a line in any other form is an edit.
 *
 * This form is new with issue 13's host log (the log itself is new this release): there are no logs
 * in an earlier form in the field, so nothing is migrated.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../protocol/intent.ts';
import { HASH_MEMBER_PREFIX, type AuditEntry } from './audit-entry.ts';

/** The hash an entry must carry: SHA-256 over its canonical JSON without `hash`. */
export function entryHash(entry: Omit<AuditEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = entry;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

/** The line (without its newline) that records `body`, and the hash it carries. */
export function entryLine(body: Omit<AuditEntry, 'hash'> & { hash?: string }): { line: string; hash: string } {
  const { hash: _ignored, ...rest } = body;
  const canonical = canonicalJson(rest);
  const hash = createHash('sha256').update(canonical).digest('hex');
  return { line: `${canonical.slice(0, -1)}${HASH_MEMBER_PREFIX}${hash}"}`, hash };
}
