/**
 * Reads one line of the host's audit log as raw bytes, the way `agent audit --verify` does 100,000
 * times a second: no JSON.parse, no re-serialising. The line must be exactly what entry-line.ts
 * writes — the canonical JSON of the entry without `hash`, then `,"hash":"<64 hex>"}` — and the
 * scan proves that while it picks out `seq`, `prev` and (for a tear marker) `tear`:
 *
 * - the bytes before the hash member are `{`, members, and nothing else; each member is a known key
 *   (strictly ascending, so sorted and none twice), `:`, and a value of that key's type written as
 *   canonicalJson writes it: strings as JSON.stringify writes them (only `\"` `\\` `\b` `\f` `\n`
 *   `\r` `\t` and lowercase `\u00XX` for the other control characters, `\udXXX` for a lone
 *   surrogate; every other character raw, in valid UTF-8), integers without sign (status may be
 *   negative), leading zeros or exponent, `tear` as `{"bytes":N,"line":N,"sha256":"<hex>"}`;
 * - a key is found only where a member starts. In valid JSON an unescaped `"` only ever opens or
 *   closes a string, and the scan walks every string to its closing quote, so text such as
 *   `,"seq":9` inside a reason or a target is string content and is never taken for a member.
 *
 * Anything else is not in canonical form (null): the verifier reports it as edited (or, when it is
 * not an entry at all, as unreadable or torn). Field lengths are the writer's business (it clips
 * them); the hash is what proves a line is unchanged.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { HASH_MEMBER_PREFIX, HASH_SUFFIX_BYTES, TEAR_OP, type TearRecord } from './audit-entry.ts';

/** What the verifier needs from a line in canonical form. */
export interface ScannedEntry {
  seq: number;
  prev: string;
  /** The hash the line carries. */
  hash: string;
  /** Whether `hash` is the SHA-256 of the line's canonical JSON (false: the entry was edited). */
  hashOk: boolean;
  /** `tear` when the line has one (a tear marker). */
  tear: TearRecord | null;
  /** Whether `op` is the tear marker's operation. */
  tearOp: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN = 0x7b;
const CLOSE_BYTE = Buffer.from('}');
const PREFIX_BYTES = Buffer.from(HASH_MEMBER_PREFIX);

type Kind = 'text' | 'hex' | 'result' | 'count' | 'int' | 'tear';
/** The keys an entry may hold, in canonical (ascending) order, with each value's type. */
const KEYS: readonly { name: string; kind: Kind; required: boolean }[] = [
  { name: 'key', kind: 'text', required: false },
  { name: 'op', kind: 'text', required: true },
  { name: 'prev', kind: 'hex', required: true },
  { name: 'reason', kind: 'text', required: false },
  { name: 'ref', kind: 'text', required: false },
  { name: 'result', kind: 'result', required: true },
  { name: 'seq', kind: 'count', required: true },
  { name: 'status', kind: 'int', required: false },
  { name: 'target', kind: 'text', required: true },
  { name: 'tear', kind: 'tear', required: false },
  { name: 'time', kind: 'text', required: true },
  { name: 'user', kind: 'text', required: false },
];
const KEY_BYTES = KEYS.map((k) => Buffer.from(`"${k.name}":`));
const REQUIRED = KEYS.reduce((mask, k, i) => (k.required ? mask | (1 << i) : mask), 0);
const RESULTS = ['"ok"', '"failed"', '"refused"'].map((r) => Buffer.from(r));
const TEAR_OP_BYTES = Buffer.from(JSON.stringify(TEAR_OP));
const TEAR_HEAD = [Buffer.from('{"bytes":'), Buffer.from(',"line":'), Buffer.from(',"sha256":"')];

/** The entry in `line` (one line of the log, without its newline), or null when it is not in canonical form. */
export function scanEntryLine(line: Uint8Array): ScannedEntry | null {
  const b = Buffer.isBuffer(line) ? line : Buffer.from(line.buffer, line.byteOffset, line.byteLength);
  const end = b.length - HASH_SUFFIX_BYTES;
  if (end < 2 || b[0] !== OPEN || !startsAt(b, end, PREFIX_BYTES)) return null;
  if (b[b.length - 2] !== QUOTE || b[b.length - 1] !== 0x7d || !isHex(b, end + PREFIX_BYTES.length, 64)) return null;
  if (!isUtf8(b.subarray(0, end))) return null;

  let seq = 0;
  let prev = '';
  let tear: TearRecord | null = null;
  let tearOp = false;
  let seen = 0;
  let k = 0;
  for (let pos = 1; ; ) {
    // A member: the next known key (keys only ever ascend), its colon, its value.
    while (k < KEYS.length && !startsAt(b, pos, KEY_BYTES[k]!)) k++;
    if (k === KEYS.length) return null;
    const key = KEYS[k]!;
    seen |= 1 << k;
    pos += KEY_BYTES[k]!.length;
    let after: number;
    switch (key.kind) {
      case 'text':
        after = stringEnd(b, pos, end);
        if (after !== -1 && key.name === 'op') tearOp = after - pos === TEAR_OP_BYTES.length && startsAt(b, pos, TEAR_OP_BYTES);
        break;
      case 'hex':
        after = b[pos] === QUOTE && isHex(b, pos + 1, 64) && b[pos + 65] === QUOTE ? pos + 66 : -1;
        if (after !== -1) prev = b.toString('latin1', pos + 1, pos + 65);
        break;
      case 'result': {
        const r = RESULTS.find((word) => startsAt(b, pos, word));
        after = r ? pos + r.length : -1;
        break;
      }
      case 'count':
      case 'int': {
        const n = integerAt(b, pos, end, key.kind === 'int');
        after = n ? n.end : -1;
        if (n && key.kind === 'count') {
          if (n.value < 1) return null;
          seq = n.value;
        }
        break;
      }
      case 'tear': {
        const t = tearAt(b, pos, end);
        after = t ? t.end : -1;
        if (t) tear = t.tear;
        break;
      }
    }
    if (after === -1 || after > end) return null;
    if (after === end) break;
    if (b[after] !== COMMA) return null;
    pos = after + 1;
    k++;
  }
  if ((seen & REQUIRED) !== REQUIRED) return null;

  const hash = b.toString('latin1', end + PREFIX_BYTES.length, end + PREFIX_BYTES.length + 64);
  const hashOk = createHash('sha256').update(b.subarray(0, end)).update(CLOSE_BYTE).digest('hex') === hash;
  return { seq, prev, hash, hashOk, tear, tearOp };
}

function startsAt(b: Buffer, pos: number, word: Buffer): boolean {
  if (pos + word.length > b.length) return false;
  for (let i = 0; i < word.length; i++) if (b[pos + i] !== word[i]) return false;
  return true;
}

/** 0-9 a-f: lowercase hex, as the writer writes it. */
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isHex(b: Buffer, pos: number, count: number): boolean {
  if (pos + count > b.length) return false;
  for (let i = pos; i < pos + count; i++) if (hexValue(b[i]!) === -1) return false;
  return true;
}

/**
 * Where the string opening at `pos` ends (just after its closing quote), or -1 when it is not a
 * string as JSON.stringify writes it.
 */
function stringEnd(b: Buffer, pos: number, end: number): number {
  if (b[pos] !== QUOTE) return -1;
  // Whether the last thing read was a `\udXXX` escape of a high surrogate: a low one right after it
  // would be a pair, which JSON.stringify writes raw, never escaped.
  let afterHigh = false;
  for (let i = pos + 1; i < end; ) {
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1;
    if (c !== BACKSLASH) {
      afterHigh = false;
      i++;
      continue;
    }
    const e = b[i + 1];
    if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
      afterHigh = false;
      i += 2;
      continue;
    }
    if (e !== 0x75 || !isHex(b, i + 2, 4)) return -1;
    const code = (hexValue(b[i + 2]!) << 12) | (hexValue(b[i + 3]!) << 8) | (hexValue(b[i + 4]!) << 4) | hexValue(b[i + 5]!);
    if (code < 0x20) {
      // \b \f \n \r \t have their short forms.
      if (code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) return -1;
      afterHigh = false;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      afterHigh = true;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      if (afterHigh) return -1;
    } else {
      return -1;
    }
    i += 6;
  }
  return -1;
}

/** A canonical integer at `pos`: no leading zeros or plus, `-` only when allowed (and never `-0`), safe size. */
function integerAt(b: Buffer, pos: number, end: number, signed: boolean): { value: number; end: number } | null {
  let i = pos;
  const negative = signed && b[i] === 0x2d;
  if (negative) i++;
  const first = i;
  let value = 0;
  while (i < end && b[i]! >= 0x30 && b[i]! <= 0x39) value = value * 10 + (b[i++]! - 0x30);
  const digits = i - first;
  if (digits === 0 || digits > 15 || (digits > 1 && b[first] === 0x30) || (negative && value === 0)) return null;
  return { value: negative ? -value : value, end: i };
}

/** `{"bytes":N,"line":N,"sha256":"<64 hex>"}` at `pos`: a tear marker's record. */
function tearAt(b: Buffer, pos: number, end: number): { tear: TearRecord; end: number } | null {
  if (!startsAt(b, pos, TEAR_HEAD[0]!)) return null;
  const bytes = integerAt(b, pos + TEAR_HEAD[0]!.length, end, false);
  if (!bytes || !startsAt(b, bytes.end, TEAR_HEAD[1]!)) return null;
  const line = integerAt(b, bytes.end + TEAR_HEAD[1]!.length, end, false);
  if (!line || line.value < 1 || !startsAt(b, line.end, TEAR_HEAD[2]!)) return null;
  const at = line.end + TEAR_HEAD[2]!.length;
  if (!isHex(b, at, 64) || b[at + 64] !== QUOTE || b[at + 65] !== 0x7d) return null;
  return { tear: { line: line.value, bytes: bytes.value, sha256: b.toString('latin1', at, at + 64) }, end: at + 66 };
}
