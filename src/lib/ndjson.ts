/** Newline-delimited JSON, bounded: a line longer than `maxLine` is an error, not a buffer
 * that grows without end. JSON.parse on foreign input is always guarded. */
export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`line exceeds ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

export class NdjsonSplitter {
  readonly #maxLine: number;
  #parts: Buffer[] = [];
  #size = 0;

  constructor(maxLine: number) {
    this.#maxLine = maxLine;
  }

  /** Feeds a chunk; returns the complete lines it finished (without newlines). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#append(chunk.subarray(start, nl));
      const line = Buffer.concat(this.#parts, this.#size).toString('utf8');
      this.#parts = [];
      this.#size = 0;
      if (line.trim() !== '') lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) this.#append(chunk.subarray(start));
    return lines;
  }

  #append(piece: Buffer): void {
    if (this.#size + piece.length > this.#maxLine) throw new LineTooLongError(this.#maxLine);
    if (piece.length > 0) {
      this.#parts.push(piece);
      this.#size += piece.length;
    }
  }
}

export type ParsedLine = { ok: true; value: unknown } | { ok: false; error: string };

export function parseJsonLine(line: string): ParsedLine {
  try {
    return { ok: true, value: JSON.parse(line) as unknown };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}
