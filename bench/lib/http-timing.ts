/**
 * Timed HTTP(S) calls for benches, over keep-alive: either straight at a unix socket (the Docker
 * engine) or over HTTPS to the hub. Bodies are counted (or kept when asked), and each call
 * reports the client-observed latency: request written → last body byte read.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface TimedResult {
  status: number;
  bytes: number;
  ms: number;
  headers: IncomingHttpHeaders;
  /** The body, when `keepBody` was asked. */
  body?: Buffer;
}

export type Target =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'http'; base: string; headers?: Record<string, string> }
  | { kind: 'https'; base: string; caPem: string; headers?: Record<string, string>; cert?: string; key?: string; servername?: string };

export class TimedClient {
  readonly #target: Target;
  readonly #agent: http.Agent;

  constructor(target: Target, maxSockets = 1) {
    this.#target = target;
    const common = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, keepAliveMsecs: 10_000 };
    this.#agent = target.kind !== 'https' ? new http.Agent(common) : new https.Agent({ ...common, ca: target.caPem, ...(target.cert ? { cert: target.cert, key: target.key } : {}) });
  }

  get label(): string {
    return this.#target.kind === 'unix' ? `unix:${this.#target.socketPath}` : this.#target.base;
  }

  /** GET (or another method) PATH; the body is drained and counted. */
  request(path: string, opts: { method?: string; keepBody?: boolean; timeoutMs?: number; onData?: (bytes: number) => void; signal?: AbortSignal } = {}): Promise<TimedResult> {
    const method = opts.method ?? 'GET';
    return new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const onResponse = (res: http.IncomingMessage): void => {
        let bytes = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (opts.keepBody) chunks.push(c);
          opts.onData?.(c.length);
        });
        res.once('error', reject);
        res.once('end', () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          resolve({ status: res.statusCode ?? 0, bytes, ms, headers: res.headers, ...(opts.keepBody ? { body: Buffer.concat(chunks) } : {}) });
        });
      };
      let req: http.ClientRequest;
      if (this.#target.kind === 'unix') {
        req = http.request({ socketPath: this.#target.socketPath, path, method, agent: this.#agent, headers: { host: 'docker' }, ...(opts.signal ? { signal: opts.signal } : {}) }, onResponse);
      } else if (this.#target.kind === 'http') {
        req = http.request(new URL(path, this.#target.base), { method, agent: this.#agent, headers: { ...this.#target.headers }, ...(opts.signal ? { signal: opts.signal } : {}) }, onResponse);
      } else {
        const url = new URL(path, this.#target.base);
        req = https.request(
          url,
          {
            method,
            agent: this.#agent,
            headers: { ...this.#target.headers },
            // '' sends no SNI and checks the certificate against the URL's host (an IP) despite a Host header.
            ...(this.#target.servername !== undefined ? { servername: this.#target.servername } : {}),
            ...(opts.signal ? { signal: opts.signal } : {}),
          },
          onResponse,
        );
      }
      req.setTimeout(opts.timeoutMs ?? 60_000, () => req.destroy(new Error(`${method} ${path} on ${this.label}: timed out`)));
      req.once('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
