/**
 * A tiny HTTPS JSON client for the benches: trusts only the hub's CA, keeps connections alive,
 * and reports each request's client-observed latency (request written → body fully read).
 */
import https from 'node:https';

export interface TimedResponse {
  status: number;
  body: unknown;
  /** Client-observed latency in milliseconds. */
  ms: number;
}

export class HubHttp {
  readonly #base: URL;
  readonly #token: string | null;
  readonly #agent: https.Agent;

  constructor(base: string | URL, caPem: string, token: string | null, maxSockets = 16) {
    this.#base = new URL(base);
    this.#token = token;
    this.#agent = new https.Agent({ ca: caPem, keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, path: string, body?: unknown, opts: { auth?: boolean; timeoutMs?: number } = {}): Promise<TimedResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    if (opts.auth !== false && this.#token) headers.authorization = `Bearer ${this.#token}`;
    const url = new URL(path, this.#base);
    return new Promise((resolve, reject) => {
      const started = process.hrtime.bigint();
      const req = https.request(url, { method, headers, agent: this.#agent, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - started) / 1e6;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Like request, but a non-2xx answer is an error. */
  async json<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean; timeoutMs?: number } = {}): Promise<T> {
    const res = await this.request(method, path, body, opts);
    if (res.status < 200 || res.status >= 300) {
      throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
    }
    return res.body as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** Runs `fn(i)` for i in [0, total) with at most `concurrency` in flight; the first error wins. */
export async function runPool(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, worker));
}
