/** The agent's way to its Docker engine: the Engine API over the unix socket, never the CLI. */
import http, { type IncomingMessage } from 'node:http';
import { DockfleetError } from '../protocol/errors.ts';
import { parseJsonLine } from '../lib/ndjson.ts';
import { readBounded } from '../lib/read-bounded.ts';

const MAX_JSON_BYTES = 64 * 1024 * 1024;

export interface EngineRequest {
  method?: string;
  path: string;
  body?: unknown;
  signal?: AbortSignal;
  timeoutMs?: number;
}

export class EngineClient {
  readonly socketPath: string;
  readonly #agent: http.Agent;

  constructor(dockerHost: string) {
    const m = /^unix:\/\/(\/.+)$/.exec(dockerHost);
    if (!m) throw new Error(`--docker must be unix:///path/to/docker.sock, got "${dockerHost}"`);
    this.socketPath = m[1]!;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  }

  /** Sends a request and returns the raw response (caller consumes the body). */
  raw(req: EngineRequest): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
      const r = http.request(
        {
          socketPath: this.socketPath,
          agent: this.#agent,
          method: req.method ?? 'GET',
          path: req.path,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          ...(req.signal ? { signal: req.signal } : {}),
          ...(req.timeoutMs ? { timeout: req.timeoutMs } : {}),
        },
        resolve,
      );
      r.on('timeout', () => r.destroy(new DockfleetError('engine_unavailable', `engine did not answer ${req.path} in time`)));
      r.on('error', (err) => reject(err instanceof DockfleetError ? err : new DockfleetError('engine_unavailable', `engine at ${this.socketPath}: ${(err as Error).message}`, { cause: err })));
      r.end(payload);
    });
  }

  /** A request whose answer is JSON; non-2xx answers become engine errors with Docker's message. */
  async json<T = unknown>(req: EngineRequest): Promise<T> {
    const res = await this.raw({ timeoutMs: 30_000, ...req });
    const raw = await readBounded(res as AsyncIterable<Buffer>, MAX_JSON_BYTES);
    if (raw === null) {
      res.destroy();
      throw new DockfleetError('payload_too_large', `engine answer to ${req.path} is too large`);
    }
    const text = raw.toString('utf8');
    const parsed = text === '' ? { ok: true as const, value: null } : parseJsonLine(text);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const message = parsed.ok ? (parsed.value as { message?: string } | null)?.message : undefined;
      throw new DockfleetError('engine_unavailable', `engine answered ${status} to ${req.path}: ${message ?? text.slice(0, 200)}`);
    }
    if (!parsed.ok) throw new DockfleetError('engine_unavailable', `engine sent malformed JSON for ${req.path}`);
    return parsed.value as T;
  }

  close(): void {
    this.#agent.destroy();
  }
}
