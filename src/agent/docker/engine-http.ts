/**
 * HTTP/1.1 to the Docker engine's unix socket for the gateway's forwarded calls, without Node's
 * HTTP client. The point is where the bytes land:
 *
 * - Socket reads go into a per-connection slab (`onread`): one 512 KiB allocation per ~half a
 *   MiB read, where a net.Socket allocates a fresh ArrayBuffer for every read.
 * - Chunked bodies are de-chunked by slicing those reads; Node's HTTP parser copies every body
 *   chunk into yet another ArrayBuffer.
 *
 * During a 1 GiB export through Node's client the agent spent over a third of its CPU in V8's
 * mark-compact, started again and again by "external memory pressure" from those short-lived
 * buffers. Slices of one slab are external memory too, but far fewer allocations.
 *
 * Scope: one request, one response, keep-alive reuse of idle connections. Hijacked calls
 * (attach/exec with `Upgrade: tcp`) stay on Node's client, which hands over the upgraded socket.
 */
import { createConnection, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';

/** Headers as Node's IncomingMessage gives them: lower-case names, repeats joined by ", "
 * (set-cookie kept as an array). */
export type EngineHeaders = Record<string, string | string[]>;

export interface EngineRequestOptions {
  method: string;
  /** Path and query, as sent on the request line. */
  path: string;
  headers: Record<string, string | string[]>;
  /**
   * The request body: null (none), a whole buffer (sent with its Content-Length), or a stream.
   * A stream is sent with its Content-Length when `headers` has one, else chunked.
   */
  body: Buffer | Readable | null;
}

const SLAB_BYTES = 512 * 1024;
/** A read never gets less room than this; a smaller tail of the slab is left unused. */
const MIN_READ_ROOM = 64 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE = 1024;
const IDLE_TIMEOUT_MS = 30_000;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const REQUEST_TARGET = /^[\x21-\x7e]+$/;

export class EngineHttpError extends Error {
  override name = 'EngineHttpError';
}

function requestHead(opts: EngineRequestOptions, framing: 'none' | 'length' | 'chunked'): string {
  if (!TOKEN.test(opts.method)) throw new EngineHttpError(`invalid method ${JSON.stringify(opts.method)}`);
  if (!REQUEST_TARGET.test(opts.path)) throw new EngineHttpError('invalid request path');
  let head = `${opts.method} ${opts.path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(opts.headers)) {
    if (!TOKEN.test(name)) throw new EngineHttpError(`invalid header name ${JSON.stringify(name)}`);
    for (const v of Array.isArray(value) ? value : [value]) {
      if (!FIELD_VALUE.test(v)) throw new EngineHttpError(`invalid value for header ${name}`);
      head += `${name}: ${v}\r\n`;
    }
  }
  if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
  return `${head}\r\n`;
}

interface ParsedHead {
  status: number;
  statusText: string;
  headers: EngineHeaders;
  keepAlive: boolean;
}

function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new EngineHttpError('the engine sent a malformed status line');
  const headers: EngineHeaders = {};
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new EngineHttpError('the engine sent a malformed header line');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name)) throw new EngineHttpError('the engine sent a malformed header name');
    const prev = headers[name];
    if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value];
    else headers[name] = prev === undefined ? value : `${prev as string}, ${value}`;
  }
  const connection = String(headers.connection ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { status: Number(m[2]), statusText: m[3] ?? '', headers, keepAlive };
}

/** The engine's answer: status and headers, and the body as a stream of slices. */
export class EngineResponse extends Readable {
  readonly statusCode: number;
  readonly statusMessage: string;
  readonly headers: EngineHeaders;
  readonly #resumeSocket: () => void;
  readonly #onDestroy: (err: Error | null) => void;

  constructor(head: ParsedHead, resumeSocket: () => void, onDestroy: (err: Error | null) => void) {
    super({ highWaterMark: 256 * 1024 });
    this.statusCode = head.status;
    this.statusMessage = head.statusText;
    this.headers = head.headers;
    this.#resumeSocket = resumeSocket;
    this.#onDestroy = onDestroy;
  }

  override _read(): void {
    this.#resumeSocket();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#onDestroy(err);
    cb(err);
  }
}

/** Sends a streamed request body on the socket, chunk-framed when its length is unknown. */
class RequestBody extends Writable {
  readonly #socket: Socket;
  readonly #chunked: boolean;

  constructor(socket: Socket, chunked: boolean) {
    super({ highWaterMark: 256 * 1024 });
    this.#socket = socket;
    this.#chunked = chunked;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    const s = this.#socket;
    if (s.destroyed) return cb(new EngineHttpError('the engine connection closed while the request body was being sent'));
    s.cork();
    for (const { chunk } of chunks) {
      if (this.#chunked) s.write(`${chunk.length.toString(16)}\r\n`);
      s.write(chunk);
      if (this.#chunked) s.write('\r\n');
    }
    s.uncork();
    // Wait for the socket only when it is full, not for every write.
    if (s.writableNeedDrain) s.once('drain', () => cb());
    else cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#chunked && !this.#socket.destroyed) this.#socket.write('0\r\n\r\n');
    cb();
  }
}

type BodyState = { kind: 'length'; left: number } | { kind: 'chunked'; phase: 'size' | 'data' | 'data-crlf' | 'trailer'; left: number; line: string } | { kind: 'close' };

/** One request/response exchange on one connection. */
class Exchange {
  readonly conn: EngineConnection;
  readonly method: string;
  readonly reused: boolean;
  readonly #onResponse: (res: EngineResponse) => void;
  readonly #onError: (err: Error, retryable: boolean) => void;
  #head = '';
  #parsed: ParsedHead | null = null;
  #res: EngineResponse | null = null;
  #body: BodyState | null = null;
  #gotBytes = false;
  #requestDone: boolean;
  #responseDone = false;
  #failed = false;
  #bodyWriter: RequestBody | null = null;

  constructor(conn: EngineConnection, opts: EngineRequestOptions, reused: boolean, onResponse: (res: EngineResponse) => void, onError: (err: Error, retryable: boolean) => void) {
    this.conn = conn;
    this.method = opts.method;
    this.reused = reused;
    this.#onResponse = onResponse;
    this.#onError = onError;
    const { body } = opts;
    const hasLength = Object.keys(opts.headers).some((k) => k.toLowerCase() === 'content-length');
    let headers = opts.headers;
    if (Buffer.isBuffer(body)) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'content-length'));
      headers['content-length'] = String(body.length);
    }
    const framing = body === null ? 'none' : Buffer.isBuffer(body) || hasLength ? 'length' : 'chunked';
    const head = requestHead({ ...opts, headers }, framing);
    const socket = conn.socket;
    if (body === null || Buffer.isBuffer(body)) {
      socket.cork();
      socket.write(head, 'latin1');
      if (body !== null && body.length > 0) socket.write(body);
      socket.uncork();
      this.#requestDone = true;
    } else {
      this.#requestDone = false;
      socket.write(head, 'latin1');
      const writer = new RequestBody(socket, framing === 'chunked');
      this.#bodyWriter = writer;
      body.on('error', (err) => this.fail(err));
      writer.on('error', (err) => this.fail(err));
      writer.on('finish', () => {
        this.#requestDone = true;
        this.#maybeRelease();
      });
      body.pipe(writer);
    }
  }

  /** Bytes from the socket; each is a slice of the connection's slab, ours to keep. */
  onData(chunk: Buffer): void {
    this.#gotBytes = true;
    let data = chunk;
    while (data.length > 0 && !this.#failed) {
      if (!this.#parsed) {
        data = this.#takeHead(data);
        continue;
      }
      data = this.#takeBody(data);
      if (this.#responseDone && data.length > 0) return this.fail(new EngineHttpError('the engine sent bytes after the end of its response'));
    }
  }

  onEnd(): void {
    if (this.#failed || this.#responseDone) return;
    if (this.#body?.kind === 'close') {
      this.#finishBody();
      return;
    }
    this.fail(new EngineHttpError(this.#parsed ? 'the engine closed the connection mid-response' : 'the engine closed the connection without answering'), true);
  }

  fail(err: Error, retryable = false): void {
    if (!this.#teardown(err) || this.#res) return;
    // Only a request the engine cannot have acted on is sent again: a GET or HEAD on a
    // kept-alive connection that closed before a single byte of answer.
    const safe = (this.method === 'GET' || this.method === 'HEAD') && this.reused && this.#requestDone && !this.#gotBytes;
    this.#onError(err, retryable && safe);
  }

  /** The caller gave up (client gone): the connection cannot be reused mid-exchange. */
  abort(): void {
    if (!(this.#responseDone && this.#requestDone)) this.#teardown();
  }

  /** Drops the connection and what still streams on it; false when that was done already. */
  #teardown(err?: Error): boolean {
    if (this.#failed) return false;
    this.#failed = true;
    this.conn.destroy();
    this.#bodyWriter?.destroy();
    if (this.#res && !this.#responseDone) this.#res.destroy(err);
    return true;
  }

  #takeHead(data: Buffer): Buffer {
    // Heads are short and arrive whole nearly always; latin1 keeps bytes one-to-one.
    const before = this.#head.length;
    this.#head += data.toString('latin1', 0, Math.min(data.length, MAX_HEAD_BYTES + 4));
    const end = this.#head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.#head.length > MAX_HEAD_BYTES) this.fail(new EngineHttpError(`the engine's response head is over ${MAX_HEAD_BYTES} bytes`));
      return data.subarray(data.length);
    }
    const rest = data.subarray(end + 4 - before);
    let parsed: ParsedHead;
    try {
      parsed = parseHead(this.#head.slice(0, end));
    } catch (err) {
      this.fail(err as Error);
      return rest;
    }
    this.#head = '';
    if (parsed.status >= 100 && parsed.status < 200) {
      // 100 Continue and other interim answers precede the real one; 101 is not ours to take.
      if (parsed.status === 101) this.fail(new EngineHttpError('the engine switched protocols on a call that did not ask to'));
      return rest;
    }
    this.#parsed = parsed;
    const noBody = this.method === 'HEAD' || parsed.status === 204 || parsed.status === 304;
    const te = String(parsed.headers['transfer-encoding'] ?? '').toLowerCase();
    const cl = parsed.headers['content-length'];
    if (noBody) this.#body = { kind: 'length', left: 0 };
    else if (/\bchunked\b/.test(te)) this.#body = { kind: 'chunked', phase: 'size', left: 0, line: '' };
    else if (cl !== undefined) {
      const n = Number(cl);
      if (!/^\d+$/.test(String(cl)) || !Number.isSafeInteger(n)) {
        this.fail(new EngineHttpError('the engine sent an invalid Content-Length'));
        return rest;
      }
      this.#body = { kind: 'length', left: n };
    } else this.#body = { kind: 'close' };
    this.#res = new EngineResponse(
      parsed,
      () => this.conn.resume(),
      () => {
        if (!this.#responseDone) this.abort();
      },
    );
    this.#onResponse(this.#res);
    if (this.#body.kind === 'length' && this.#body.left === 0) this.#finishBody();
    return rest;
  }

  #push(slice: Buffer): void {
    if (slice.length > 0 && this.#res && !this.#res.destroyed && !this.#res.push(slice)) this.conn.pause();
  }

  #takeBody(data: Buffer): Buffer {
    const b = this.#body!;
    if (b.kind === 'close') {
      this.#push(data);
      return data.subarray(data.length);
    }
    if (b.kind === 'length') {
      const n = Math.min(b.left, data.length);
      this.#push(data.subarray(0, n));
      b.left -= n;
      if (b.left === 0) this.#finishBody();
      return data.subarray(n);
    }
    switch (b.phase) {
      case 'data': {
        const n = Math.min(b.left, data.length);
        this.#push(data.subarray(0, n));
        b.left -= n;
        if (b.left === 0) {
          b.phase = 'data-crlf';
          b.line = '';
        }
        return data.subarray(n);
      }
      case 'size':
      case 'data-crlf':
      case 'trailer': {
        const nl = data.indexOf(10);
        const take = nl < 0 ? data.length : nl + 1;
        b.line += data.toString('latin1', 0, take);
        if (b.line.length > MAX_CHUNK_LINE) {
          this.fail(new EngineHttpError('the engine sent an over-long chunk line'));
          return data.subarray(take);
        }
        if (nl < 0) return data.subarray(take);
        const line = b.line.endsWith('\r\n') ? b.line.slice(0, -2) : b.line.slice(0, -1);
        b.line = '';
        if (b.phase === 'data-crlf') {
          if (line !== '') this.fail(new EngineHttpError('the engine sent a chunk longer than its size'));
          else b.phase = 'size';
        } else if (b.phase === 'size') {
          const hex = line.split(';', 1)[0]!.trim();
          if (!/^[0-9a-fA-F]{1,13}$/.test(hex)) {
            this.fail(new EngineHttpError('the engine sent a malformed chunk size'));
          } else {
            const size = parseInt(hex, 16);
            if (size === 0) b.phase = 'trailer';
            else {
              b.phase = 'data';
              b.left = size;
            }
          }
        } else if (line === '') {
          this.#finishBody();
        }
        return data.subarray(take);
      }
    }
  }

  #finishBody(): void {
    this.#responseDone = true;
    this.#res?.push(null);
    this.#maybeRelease();
  }

  #maybeRelease(): void {
    if (!this.#responseDone || !this.#requestDone || this.#failed) return;
    const reusable = this.#parsed!.keepAlive && this.#body!.kind !== 'close';
    this.conn.release(reusable);
  }
}

/** One keep-alive connection to the engine, reading into its own slab. */
class EngineConnection {
  readonly socket: Socket;
  readonly #pool: EngineHttp;
  #slab = Buffer.allocUnsafe(SLAB_BYTES);
  #offset = 0;
  #exchange: Exchange | null = null;
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(pool: EngineHttp, socketPath: string) {
    this.#pool = pool;
    this.socket = createConnection({
      path: socketPath,
      onread: {
        buffer: () => {
          if (SLAB_BYTES - this.#offset < MIN_READ_ROOM) {
            this.#slab = Buffer.allocUnsafe(SLAB_BYTES);
            this.#offset = 0;
          }
          return this.#slab.subarray(this.#offset);
        },
        callback: (n: number, buf: Uint8Array) => {
          // `buf` is the tail handed out above; what was read is ours until the slab moves on.
          const chunk = buf as Buffer;
          if (chunk.buffer === this.#slab.buffer) this.#offset += n;
          const slice = chunk.subarray(0, n);
          if (this.#exchange) this.#exchange.onData(slice);
          else this.destroy();
          return !this.socket.isPaused();
        },
      },
    });
    this.socket.on('end', () => {
      const ex = this.#exchange;
      this.destroy();
      ex?.onEnd();
    });
    this.socket.on('error', (err) => {
      const ex = this.#exchange;
      this.destroy();
      ex?.fail(new EngineHttpError(`could not reach the Docker engine: ${err.message}`), true);
    });
    this.socket.on('close', () => {
      const ex = this.#exchange;
      this.#pool.forget(this);
      ex?.onEnd();
    });
  }

  start(exchange: Exchange): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#exchange = exchange;
    this.socket.ref();
    if (this.socket.isPaused()) this.socket.resume();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.socket.destroyed && this.socket.isPaused()) this.socket.resume();
  }

  release(reusable: boolean): void {
    this.#exchange = null;
    if (!reusable || this.socket.destroyed) return this.destroy();
    this.socket.unref();
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.destroy(), IDLE_TIMEOUT_MS);
    this.#idleTimer.unref();
    this.#pool.idle(this);
  }

  destroy(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    this.#exchange = null;
    this.#pool.forget(this);
    this.socket.destroy();
  }
}

/** The agent's pool of keep-alive connections to one engine socket. */
export class EngineHttp {
  readonly socketPath: string;
  readonly #maxIdle: number;
  readonly #idle: EngineConnection[] = [];

  constructor(socketPath: string, maxIdle = 32) {
    this.socketPath = socketPath;
    this.#maxIdle = maxIdle;
  }

  /** Number of idle keep-alive connections (for tests). */
  get idleCount(): number {
    return this.#idle.length;
  }

  /**
   * Sends one request. `onResponse` gets the answer as soon as its head is in; `onError` gets a
   * failure before that (after it, the response stream errors instead). Returns an abort
   * function: the connection is dropped unless the exchange has finished.
   */
  request(opts: EngineRequestOptions, onResponse: (res: EngineResponse) => void, onError: (err: Error) => void): () => void {
    let exchange: Exchange | null = null;
    let aborted = false;
    const attempt = (allowRetry: boolean): void => {
      const reused = this.#idle.pop();
      const conn = reused ?? new EngineConnection(this, this.socketPath);
      try {
        exchange = new Exchange(conn, opts, reused !== undefined, onResponse, (err, retryable) => {
          // A kept-alive connection the engine had closed meanwhile: the request never got an
          // answer, so it is safe to send once more on a new one.
          if (retryable && allowRetry && !aborted) attempt(false);
          else onError(err);
        });
      } catch (err) {
        conn.release(reused !== undefined);
        return onError(err as Error);
      }
      conn.start(exchange);
    };
    attempt(opts.body === null);
    return () => {
      aborted = true;
      exchange?.abort();
    };
  }

  idle(conn: EngineConnection): void {
    if (this.#idle.length >= this.#maxIdle) return conn.destroy();
    this.#idle.push(conn);
  }

  forget(conn: EngineConnection): void {
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  close(): void {
    for (const conn of [...this.#idle]) conn.destroy();
  }
}
