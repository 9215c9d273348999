/**
 * The host's own audit log (issue 13): `<state>/audit.log`, one JSON entry a line, hash-chained,
 * append-only. The agent records here every mutating action it executed or refused on this host —
 * signed host or not — so the host's owner can read and verify what was done with no hub at all
 * (`dockfleet agent audit`).
 *
 * Writes are single `write(2)` calls on a file opened with O_APPEND, made synchronously in the order
 * `append` is called: an entry is a few hundred bytes, so each costs microseconds and the chain can
 * never be written out of order. `append` never throws into its caller; a failed write is logged and
 * the next append first repairs the tail.
 *
 * A crash mid-write leaves a torn last line. Opening the log finds it, ends it with a newline (the
 * torn bytes stay exactly as written: history is never rewritten) and appends a marker entry that
 * records the tear (its line, length and SHA-256); the chain continues from the last whole entry.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { AUDIT_FILE, GENESIS, TEAR_OP, clip, sha256Hex, type AuditEntry, type AuditInput, type TearRecord } from './audit-entry.ts';
import { entryLine } from './entry-line.ts';
import { scanEntryLine } from './scan-entry-line.ts';

export type { AuditInput, AuditResult } from './audit-entry.ts';

export interface AuditHead {
  seq: number;
  hash: string;
}

const NL = 0x0a;
const TAIL_WINDOW = 64 * 1024;

export class HostAuditLog {
  readonly path: string;
  #fd: number | null = null;
  #head: AuditHead = { seq: 0, hash: GENESIS };
  #log: Logger | undefined;
  #listeners = new Set<(head: AuditHead) => void>();
  /** Tears found (and recorded) since this log was opened, for the caller to report. */
  readonly tears: TearRecord[] = [];

  private constructor(path: string, log: Logger | undefined) {
    this.path = path;
    this.#log = log;
  }

  /** Opens (creating when absent) the log in the agent's state dir and repairs a torn tail. */
  static open(stateDir: string, log?: Logger): HostAuditLog {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const audit = new HostAuditLog(join(stateDir, AUDIT_FILE), log);
    audit.#reopen();
    return audit;
  }

  /** The last entry's seq and hash (seq 0 and GENESIS for an empty log): what the hub compares. */
  head(): AuditHead {
    return { ...this.#head };
  }

  /** Called after each entry is written (the inventory stream reports the new head). */
  onAppend(listener: (head: AuditHead) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Records one action. Never throws: a log that cannot be written is reported and repaired later. */
  append(input: AuditInput): void {
    try {
      if (this.#fd === null) this.#reopen();
      this.#write(entryFields(input));
    } catch (err) {
      this.#closeFd();
      this.#log?.warn({ err: (err as Error).message, path: this.path, op: input.op }, 'host audit log write failed');
      return;
    }
    for (const listener of this.#listeners) {
      try {
        listener(this.head());
      } catch {
        /* a listener's trouble is not the log's */
      }
    }
  }

  close(): void {
    this.#closeFd();
  }

  #closeFd(): void {
    if (this.#fd === null) return;
    try {
      closeSync(this.#fd);
    } catch {
      /* already gone */
    }
    this.#fd = null;
  }

  /** Opens the file for appending, finds the head, and records a torn tail when there is one. */
  #reopen(): void {
    this.#fd = openSync(this.path, 'a+', 0o600);
    const tail = readTail(this.#fd);
    this.#head = tail.head;
    if (tail.unterminated) writeAll(this.#fd, Buffer.from('\n'));
    if (tail.torn) {
      const tear: TearRecord = { line: countLines(this.#fd, tail.torn.offset) + 1, bytes: tail.torn.bytes.length, sha256: sha256Hex(tail.torn.bytes) };
      this.#write({
        op: TEAR_OP,
        target: AUDIT_FILE,
        result: 'failed',
        tear,
        reason: `line ${tear.line} was cut off mid-write (${tear.bytes} bytes, kept as written); the chain continues from seq ${this.#head.seq}`,
      });
      this.tears.push(tear);
      this.#log?.warn({ path: this.path, line: tear.line, bytes: tear.bytes }, 'host audit log: torn last line found and recorded');
    }
  }

  #write(fields: Omit<AuditEntry, 'seq' | 'time' | 'prev' | 'hash'>): void {
    const body = { seq: this.#head.seq + 1, time: new Date().toISOString(), ...fields, prev: this.#head.hash };
    // The canonical JSON with the hash last (entry-line.ts): what the verifier hashes as read.
    const { line, hash } = entryLine(body);
    writeAll(this.#fd!, Buffer.from(`${line}\n`));
    this.#head = { seq: body.seq, hash };
  }
}

/** The caller's fields, clipped, with absent ones left out (they are not hashed). */
function entryFields(input: AuditInput): Omit<AuditEntry, 'seq' | 'time' | 'prev' | 'hash'> {
  const out: Omit<AuditEntry, 'seq' | 'time' | 'prev' | 'hash'> = { op: clip(String(input.op)), target: clip(String(input.target)), result: input.result };
  if (typeof input.status === 'number' && Number.isInteger(input.status)) out.status = input.status;
  if (input.reason !== undefined) out.reason = clip(String(input.reason));
  if (input.user !== undefined) out.user = clip(String(input.user));
  if (input.key !== undefined) out.key = clip(String(input.key));
  if (input.ref !== undefined) out.ref = clip(String(input.ref));
  return out;
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}

/** A whole, correctly hashed entry's seq and hash, or null. */
function validEntry(line: Buffer): AuditHead | null {
  const entry = scanEntryLine(line);
  return entry?.hashOk ? { seq: entry.seq, hash: entry.hash } : null;
}

interface Tail {
  head: AuditHead;
  /** The file does not end with a newline (one must be written before the next entry). */
  unterminated: boolean;
  /** The last line, when it is not a whole entry: where it starts and its bytes. */
  torn: { offset: number; bytes: Buffer } | null;
}

/**
 * Reads the end of the file: the last line decides whether the tail is torn, and the last whole
 * entry gives the head. Reads a growing window from the end; the whole file only when it must.
 */
function readTail(fd: number): Tail {
  const size = fstatSync(fd).size;
  if (size === 0) return { head: { seq: 0, hash: GENESIS }, unterminated: false, torn: null };
  for (let window = TAIL_WINDOW; ; window *= 4) {
    const start = Math.max(0, size - window);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const unterminated = buf[buf.length - 1] !== NL;
    // Lines in the window, newest first; the first may be partial unless the window starts the file.
    const lines: { offset: number; bytes: Buffer }[] = [];
    let end = unterminated ? buf.length : buf.length - 1;
    for (let i = end - 1; i >= -1; i--) {
      if (i === -1 || buf[i] === NL) {
        if (i === -1 && start > 0) break;
        lines.push({ offset: start + i + 1, bytes: buf.subarray(i + 1, end) });
        end = i;
      }
    }
    let torn: Tail['torn'] = null;
    for (let k = 0; k < lines.length; k++) {
      const line = lines[k]!;
      const entry = validEntry(line.bytes);
      if (entry) return { head: entry, unterminated, torn };
      if (k === 0) torn = line;
      // An unreadable line further back was already there: verify reports it; the head is still found.
    }
    if (start === 0) return { head: { seq: 0, hash: GENESIS }, unterminated, torn };
  }
}

/** How many newlines come before `offset` (the torn line's number, less one). */
function countLines(fd: number, offset: number): number {
  const chunk = Buffer.alloc(1024 * 1024);
  let count = 0;
  for (let pos = 0; pos < offset; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, offset - pos), pos);
    if (n === 0) break;
    for (let i = chunk.indexOf(NL, 0); i !== -1 && i < n; i = chunk.indexOf(NL, i + 1)) count++;
    pos += n;
  }
  return count;
}
