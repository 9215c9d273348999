/**
 * Docker's log / attach stream, as pure functions (no DOM), so they can be unit-tested in Node.
 *
 * Without a TTY, Docker multiplexes stdout and stderr into one body of frames:
 *   [stream: 1 byte (0 stdin, 1 stdout, 2 stderr, 3 system error), 0, 0, 0, size: uint32 BE] payload
 * A frame may be split across any number of network chunks, and a chunk may hold many frames.
 * With a TTY, the body is the raw terminal output.
 */

export type StreamName = 'stdin' | 'stdout' | 'stderr' | 'system';

const STREAMS: readonly StreamName[] = ['stdin', 'stdout', 'stderr', 'system'];

export interface Frame {
  stream: StreamName;
  /** A view into the pushed chunk: a frame's payload may come out in several pieces. */
  data: Uint8Array;
}

export const FRAME_HEADER_BYTES = 8;

/** Reads one 8-byte header; null when the bytes are not a valid Docker frame header. */
export function parseFrameHeader(h: Uint8Array, offset = 0): { stream: StreamName; size: number } | null {
  if (h.length - offset < FRAME_HEADER_BYTES) return null;
  const s = h[offset]!;
  if (s > 3 || h[offset + 1] !== 0 || h[offset + 2] !== 0 || h[offset + 3] !== 0) return null;
  const size = ((h[offset + 4]! << 24) >>> 0) + (h[offset + 5]! << 16) + (h[offset + 6]! << 8) + h[offset + 7]!;
  return { stream: STREAMS[s]!, size };
}

/** Builds one frame (for tests and fixtures). */
export function encodeFrame(stream: 1 | 2 | 3, payload: Uint8Array | string): Uint8Array {
  const data = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(FRAME_HEADER_BYTES + data.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, data.length, false);
  out.set(data, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental demultiplexer. `push(chunk)` returns the payload pieces the chunk completes or
 * continues, in order, without copying them. If the body turns out not to be multiplexed (a
 * header with nonzero padding or an unknown stream byte), it passes everything through as
 * stdout from then on, so a TTY container whose TTY flag was misread still shows its output.
 */
export class DockerDemuxer {
  private header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private remaining = 0;
  private stream: StreamName = 'stdout';
  private raw = false;

  /** True once the input was found not to be a multiplexed stream. */
  get passthrough(): boolean {
    return this.raw;
  }

  /** Bytes of a frame still expected (0 between frames). */
  get pendingBytes(): number {
    return this.remaining + (this.headerFill > 0 ? FRAME_HEADER_BYTES - this.headerFill : 0);
  }

  push(chunk: Uint8Array): Frame[] {
    const out: Frame[] = [];
    if (this.raw) {
      if (chunk.length > 0) out.push({ stream: 'stdout', data: chunk });
      return out;
    }
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        out.push({ stream: this.stream, data: chunk.subarray(i, i + n) });
        this.remaining -= n;
        i += n;
        continue;
      }
      const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - i);
      this.header.set(chunk.subarray(i, i + n), this.headerFill);
      this.headerFill += n;
      i += n;
      if (this.headerFill < FRAME_HEADER_BYTES) break;
      this.headerFill = 0;
      const h = parseFrameHeader(this.header);
      if (!h) {
        // Not multiplexed after all: hand back what was taken for a header, then the rest raw.
        this.raw = true;
        out.push({ stream: 'stdout', data: this.header.slice() });
        if (i < chunk.length) out.push({ stream: 'stdout', data: chunk.subarray(i) });
        return out;
      }
      this.stream = h.stream;
      this.remaining = h.size;
    }
    return out;
  }
}

/** Splits a whole multiplexed body (tests, small bodies). Pieces of one frame are joined. */
export function demuxAll(body: Uint8Array): Array<{ stream: StreamName; data: Uint8Array }> {
  const frames: Array<{ stream: StreamName; data: Uint8Array }> = [];
  let i = 0;
  while (i + FRAME_HEADER_BYTES <= body.length) {
    const h = parseFrameHeader(body, i);
    if (!h) throw new Error(`invalid frame header at byte ${i}`);
    const end = i + FRAME_HEADER_BYTES + h.size;
    if (end > body.length) throw new Error(`truncated frame at byte ${i}`);
    frames.push({ stream: h.stream, data: body.subarray(i + FRAME_HEADER_BYTES, end) });
    i = end;
  }
  if (i !== body.length) throw new Error(`truncated frame header at byte ${i}`);
  return frames;
}

// ---------------------------------------------------------------------------------------------
// Lines

export interface LogLine {
  /** Increasing number, unique within one LogDecoder. */
  seq: number;
  stream: 'stdout' | 'stderr' | 'system';
  /** Docker's RFC 3339 timestamp (timestamps=1), or null. */
  time: string | null;
  text: string;
}

const TIMESTAMP = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) ?/;

/** Splits Docker's `timestamps=1` prefix off a line. */
export function splitTimestamp(line: string): { time: string | null; text: string } {
  const m = TIMESTAMP.exec(line);
  if (!m) return { time: null, text: line };
  return { time: m[1]!, text: line.slice(m[0].length) };
}

// CSI / OSC / other ESC sequences, and stray control characters except tab.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])|[\x00-\x08\x0b-\x1f\x7f]/g;

/** Removes terminal escape sequences and control characters (colors, cursor moves). */
export function stripAnsi(s: string): string {
  return s.includes('\x1b') || /[\x00-\x08\x0b-\x1f\x7f]/.test(s) ? s.replace(ANSI, '') : s;
}

/** Accumulates text and returns complete lines (without `\n` or a trailing `\r`). */
export class LineSplitter {
  private partial = '';

  push(text: string): string[] {
    if (!text) return [];
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    return parts.map((p) => (p.endsWith('\r') ? p.slice(0, -1) : p));
  }

  /** The unterminated rest, if any (at end of stream). */
  flush(): string | null {
    if (!this.partial) return null;
    const rest = this.partial.endsWith('\r') ? this.partial.slice(0, -1) : this.partial;
    this.partial = '';
    return rest;
  }

  get pending(): string {
    return this.partial;
  }
}

export interface LogDecoderOptions {
  /** The container has a TTY: the body is raw text, not frames. */
  tty: boolean;
  /** Lines carry Docker's timestamp prefix (`timestamps=1`). */
  timestamps: boolean;
}

/**
 * Bytes of a logs body in, lines out: demultiplexes (no TTY), decodes UTF-8 per stream (a
 * character may be split across frames), splits lines per stream, splits off timestamps and
 * strips terminal escapes.
 */
export class LogDecoder {
  private demux: DockerDemuxer | null;
  private decoders = new Map<string, TextDecoder>();
  private splitters = new Map<string, LineSplitter>();
  private seq = 0;

  constructor(private readonly opts: LogDecoderOptions) {
    this.demux = opts.tty ? null : new DockerDemuxer();
  }

  push(chunk: Uint8Array): LogLine[] {
    const out: LogLine[] = [];
    if (!this.demux) {
      this.take('stdout', chunk, out);
      return out;
    }
    // Docker writes a frame per write (often per line): decode runs of same-stream frames at
    // once, which costs one decode and one split instead of one per frame.
    const frames = this.demux.push(chunk);
    let i = 0;
    while (i < frames.length) {
      const stream = frames[i]!.stream === 'stdin' ? 'stdout' : frames[i]!.stream;
      let j = i + 1;
      let size = frames[i]!.data.length;
      while (j < frames.length && (frames[j]!.stream === 'stdin' ? 'stdout' : frames[j]!.stream) === stream) {
        size += frames[j]!.data.length;
        j++;
      }
      if (j === i + 1) {
        this.take(stream, frames[i]!.data, out);
      } else {
        const joined = new Uint8Array(size);
        let at = 0;
        for (let k = i; k < j; k++) {
          joined.set(frames[k]!.data, at);
          at += frames[k]!.data.length;
        }
        this.take(stream, joined, out);
      }
      i = j;
    }
    return out;
  }

  /** End of the body: the unterminated last line of each stream. */
  end(): LogLine[] {
    const out: LogLine[] = [];
    for (const [stream, dec] of this.decoders) {
      const rest = dec.decode();
      const splitter = this.splitterFor(stream);
      for (const l of splitter.push(rest)) out.push(this.line(stream, l));
      const last = splitter.flush();
      if (last !== null) out.push(this.line(stream, last));
    }
    return out;
  }

  private take(stream: string, data: Uint8Array, out: LogLine[]): void {
    let dec = this.decoders.get(stream);
    if (!dec) {
      dec = new TextDecoder('utf-8');
      this.decoders.set(stream, dec);
    }
    const text = dec.decode(data, { stream: true });
    for (const l of this.splitterFor(stream).push(text)) out.push(this.line(stream, l));
  }

  private splitterFor(stream: string): LineSplitter {
    let s = this.splitters.get(stream);
    if (!s) {
      s = new LineSplitter();
      this.splitters.set(stream, s);
    }
    return s;
  }

  private line(stream: string, raw: string): LogLine {
    const { time, text } = this.opts.timestamps ? splitTimestamp(raw) : { time: null, text: raw };
    return {
      seq: this.seq++,
      stream: stream === 'stderr' ? 'stderr' : stream === 'system' ? 'system' : 'stdout',
      time,
      text: stripAnsi(text),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// A bounded buffer of lines

/** Keeps the last `capacity` lines; trims in batches so a push is O(1) amortised. */
export class BoundedLines<T> {
  private items: T[] = [];
  private droppedCount = 0;

  constructor(readonly capacity: number) {}

  push(lines: readonly T[]): void {
    for (const l of lines) this.items.push(l);
    const slack = Math.max(16, this.capacity >> 3);
    if (this.items.length > this.capacity + slack) this.trim();
  }

  private trim(): void {
    const over = this.items.length - this.capacity;
    if (over > 0) {
      this.items.splice(0, over);
      this.droppedCount += over;
    }
  }

  /** The kept lines, oldest first (at most `capacity`). */
  get lines(): readonly T[] {
    this.trim();
    return this.items;
  }

  get length(): number {
    return Math.min(this.items.length, this.capacity);
  }

  /** Lines dropped so far to stay within capacity. */
  get dropped(): number {
    return this.droppedCount + Math.max(0, this.items.length - this.capacity);
  }

  clear(): void {
    this.items = [];
    this.droppedCount = 0;
  }
}

/** Text of lines for a .log download. */
export function linesToText(lines: readonly LogLine[]): string {
  let s = '';
  for (const l of lines) s += `${l.time ? `${l.time} ` : ''}${l.stream === 'stderr' ? '[stderr] ' : ''}${l.text}\n`;
  return s;
}
