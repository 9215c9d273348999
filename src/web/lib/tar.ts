/**
 * Just enough tar for the container files page, in the browser: write a one-file archive for
 * `PUT /containers/ID/archive` (ustar, with a PAX header when a name or size does not fit), and
 * read the headers of the archive `GET /containers/ID/archive` streams back — entry by entry, the
 * file data skipped rather than kept — to list a folder or pull one file out of it.
 */

const BLOCK = 512;
const enc = new TextEncoder();
const dec = new TextDecoder();

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mode: number, mtime: number, type: '0' | 'x'): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, at: number, len: number): void => {
    h.set(enc.encode(s).subarray(0, len), at);
  };
  put(name, 0, 100); // cut at 100 bytes: a longer name rides in the PAX header before it
  put(octal(mode & 0o7777, 8), 100, 8);
  put(octal(0, 8), 108, 8); // uid
  put(octal(0, 8), 116, 8); // gid
  put(octal(size, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  put('        ', 148, 8); // checksum counts as spaces while summed
  put(type, 156, 1);
  put('ustar\x0000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.length % BLOCK;
  return rest ? [data, new Uint8Array(BLOCK - rest)] : [data];
}

/** A PAX record "LEN key=value\n", where LEN counts itself. */
function paxRecord(key: string, value: string): string {
  const base = enc.encode(` ${key}=${value}\n`).length;
  let len = base + String(base).length;
  if (String(len).length !== String(base).length) len = base + String(len).length;
  return `${len} ${key}=${value}\n`;
}

/** A tar archive holding one regular file `name` (no slashes: it lands in the folder PUT names). */
export function tarOneFile(name: string, data: Uint8Array, opts: { mode?: number; mtime?: Date } = {}): Blob {
  if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0')) throw new Error(`"${name}" is not a file name`);
  const mtime = Math.floor((opts.mtime ?? new Date()).getTime() / 1000);
  const mode = opts.mode ?? 0o644;
  const parts: Uint8Array[] = [];
  const longName = enc.encode(name).length > 100;
  const bigSize = data.length > 0o77777777777;
  if (longName || bigSize) {
    const pax = enc.encode((longName ? paxRecord('path', name) : '') + (bigSize ? paxRecord('size', String(data.length)) : ''));
    parts.push(header('PaxHeader', pax.length, 0o644, mtime, 'x'), ...padded(pax));
  }
  parts.push(header(name, bigSize ? 0 : data.length, mode, mtime, '0'));
  parts.push(...padded(data), new Uint8Array(BLOCK * 2));
  return new Blob(parts as BlobPart[], { type: 'application/x-tar' });
}

export type TarKind = 'file' | 'dir' | 'link' | 'symlink' | 'other';

export interface TarEntry {
  /** As stored, e.g. `etc/hosts` or `etc/ssl/` (the GET archive's root is the folder's own name). */
  path: string;
  kind: TarKind;
  size: number;
  mode: number;
  mtime: Date;
  /** Symlink or hard link target. */
  linkTarget: string;
}

const KINDS: Record<string, TarKind> = { '0': 'file', '\0': 'file', '7': 'file', '5': 'dir', '1': 'link', '2': 'symlink' };

function field(h: Uint8Array, at: number, len: number): string {
  const s = h.subarray(at, at + len);
  const end = s.indexOf(0);
  return dec.decode(end === -1 ? s : s.subarray(0, end));
}

function num(h: Uint8Array, at: number, len: number): number {
  if (h[at]! & 0x80) {
    // base-256 (GNU) for big values
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + h[i]!;
    return n;
  }
  const s = field(h, at, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(' ', i);
    if (sp === -1) break;
    const len = Number(text.slice(i, sp));
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = text.slice(sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Reads exactly n bytes (or fewer at the end) from a byte stream, keeping leftovers. */
class ByteReader {
  private buf: Uint8Array = new Uint8Array(0);
  private done = false;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}
  read = 0;

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.done) {
      const { value, done } = await this.reader.read();
      if (done) {
        this.done = true;
        break;
      }
      const next = new Uint8Array(this.buf.length + value.length);
      next.set(this.buf);
      next.set(value, this.buf.length);
      this.buf = next;
    }
  }

  async take(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    this.read += out.length;
    return out;
  }

  /** Skips n bytes without holding more than one chunk. */
  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.buf.length === 0) {
        if (this.done) return;
        const { value, done } = await this.reader.read();
        if (done) {
          this.done = true;
          return;
        }
        this.buf = value;
      }
      const k = Math.min(n, this.buf.length);
      this.buf = this.buf.subarray(k);
      this.read += k;
      n -= k;
    }
  }
}

/**
 * Walks a tar stream: `visit` sees each entry and may ask for its data (`want` true: the
 * bytes are read and handed to it) or return 'stop' to end the walk early. Without `want`,
 * file data is skipped, so a large folder is listed in bounded memory.
 */
export async function walkTar(stream: ReadableStream<Uint8Array>, visit: (e: TarEntry, data: Uint8Array | null) => 'stop' | 'want' | undefined): Promise<void> {
  const reader = stream.getReader();
  const r = new ByteReader(reader);
  let pax: Record<string, string> = {};
  let longName: string | null = null;
  try {
    for (;;) {
      const h = await r.take(BLOCK);
      if (h.length < BLOCK || h.every((b) => b === 0)) return;
      const type = String.fromCharCode(h[156]!);
      const size = pax.size ? Number(pax.size) : num(h, 124, 12);
      const blocks = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'x' || type === 'L' || type === 'g') {
        const body = await r.take(blocks);
        if (type === 'x') pax = { ...pax, ...parsePax(dec.decode(body.subarray(0, size))) };
        else if (type === 'L') longName = dec.decode(body.subarray(0, size)).replace(/\0+$/, '');
        continue;
      }
      const prefix = field(h, 345, 155);
      const short = field(h, 0, 100);
      const entry: TarEntry = {
        path: pax.path ?? longName ?? (prefix ? `${prefix}/${short}` : short),
        kind: KINDS[type] ?? 'other',
        size,
        mode: num(h, 100, 8),
        mtime: new Date(num(h, 136, 12) * 1000),
        linkTarget: pax.linkpath ?? field(h, 157, 100),
      };
      pax = {};
      longName = null;
      const wish = visit(entry, null);
      if (wish === 'stop') return;
      if (wish === 'want') {
        const data = (await r.take(blocks)).slice(0, size);
        if (visit(entry, data) === 'stop') return;
      } else {
        await r.skip(blocks);
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
