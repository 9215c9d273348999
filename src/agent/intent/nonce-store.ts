/**
 * The nonces of signed intents this host has accepted, remembered until each intent expires —
 * across restarts — so a signed call can run once and never be replayed (issue 13).
 *
 * `<state>/intent-nonces.log`: one line per accepted nonce, `<exp ms> <nonce>\n`, appended with a
 * single write(2) on an O_APPEND descriptor before the call goes on (microseconds; it survives an
 * agent restart or crash, the kernel holds it). Opening the store reads the file, drops what has
 * expired and rewrites the rest (temp file, then rename), so the file stays as small as the
 * live set. Bounded: past MAX_LIVE_NONCES live nonces the store refuses new ones (the call is
 * refused with that reason) rather than grow without end; expired ones are swept as it goes.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const NONCE_FILE = 'intent-nonces.log';
export const MAX_LIVE_NONCES = 1_000_000;
const NONCE_LINE = /^(\d{1,16}) ([A-Za-z0-9_-]{1,64})$/;

export type NonceUse = { ok: true } | { ok: false; reason: string };

export class NonceStore {
  readonly path: string;
  readonly #live = new Map<string, number>();
  readonly #max: number;
  #fd: number;
  #nextSweep = 0;

  private constructor(path: string, fd: number, max: number) {
    this.path = path;
    this.#fd = fd;
    this.#max = max;
  }

  /** Reads and compacts the store in `stateDir` (creating it when absent). */
  static open(stateDir: string, opts: { max?: number; now?: number } = {}): NonceStore {
    const path = join(stateDir, NONCE_FILE);
    const now = opts.now ?? Date.now();
    const live = new Map<string, number>();
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the intent nonce store ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    // A torn last line (a crash mid-write) or a stray one is skipped; every whole line counts.
    for (const line of text.split('\n')) {
      const m = NONCE_LINE.exec(line);
      if (!m) continue;
      const exp = Number(m[1]);
      if (exp > now) live.set(m[2]!, Math.max(exp, live.get(m[2]!) ?? 0));
    }
    const tmp = `${path}.tmp`;
    const tmpFd = openSync(tmp, 'w', 0o600);
    try {
      let out = '';
      for (const [nonce, exp] of live) {
        out += `${exp} ${nonce}\n`;
        if (out.length > 1 << 20) {
          writeAllText(tmpFd, out);
          out = '';
        }
      }
      writeAllText(tmpFd, out);
      fsyncSync(tmpFd);
    } finally {
      closeSync(tmpFd);
    }
    renameSync(tmp, path);
    const store = new NonceStore(path, openSync(path, 'a', 0o600), opts.max ?? MAX_LIVE_NONCES);
    for (const [nonce, exp] of live) store.#live.set(nonce, exp);
    return store;
  }

  get size(): number {
    return this.#live.size;
  }

  /** Records `nonce` as used until `exp`; refused when it was used before (and is still live). */
  use(nonce: string, exp: number, now = Date.now()): NonceUse {
    const seen = this.#live.get(nonce);
    if (seen !== undefined && seen > now) return { ok: false, reason: 'this signed intent was already used (a replay)' };
    if (this.#live.size >= this.#max || now >= this.#nextSweep) this.#sweep(now);
    if (this.#live.size >= this.#max) return { ok: false, reason: `this host remembers ${this.#max} unexpired signed intents already and takes no more until some expire` };
    try {
      writeAllText(this.#fd, `${exp} ${nonce}\n`);
    } catch (err) {
      return { ok: false, reason: `this host cannot record the intent's nonce in its state dir (${(err as NodeJS.ErrnoException).code ?? 'write failed'})` };
    }
    this.#live.set(nonce, exp);
    return { ok: true };
  }

  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      /* already closed */
    }
  }

  /** Drops expired nonces from memory (the file is compacted at the next open). */
  #sweep(now: number): void {
    for (const [nonce, exp] of this.#live) if (exp <= now) this.#live.delete(nonce);
    this.#nextSweep = now + 30_000;
  }
}

function writeAllText(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off);
}
