/**
 * The Engine API calls a stack applier makes, with the answer's status kept (a 404 or a 409
 * decides what happens next, where EngineClient.json turns every non-2xx into one error),
 * and a container's last log lines read through Docker's 8-byte stream framing.
 */
import http from 'node:http';
import type { EngineClient } from '../engine-client.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { DockerDemuxer } from '../../web/lib/docker-stream.ts';
import { DockfleetError } from '../../protocol/errors.ts';

const MAX_ANSWER = 32 * 1024 * 1024;
const MAX_LOG_BYTES = 256 * 1024;

export interface EngineAnswer {
  status: number;
  json: unknown;
  /** Docker's `message` for an error answer, else ''. */
  message: string;
  /** The answer's text (a pull's NDJSON progress, for one). */
  text: string;
}

export class StackEngine {
  readonly #engine: EngineClient;

  constructor(engine: EngineClient) {
    this.#engine = engine;
  }

  async call(method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<EngineAnswer> {
    const res = await this.#engine.raw({ method, path, ...(body === undefined ? {} : { body }), timeoutMs });
    const raw = await readBounded(res as AsyncIterable<Buffer>, MAX_ANSWER);
    if (raw === null) {
      res.destroy();
      throw new DockfleetError('payload_too_large', `engine answer to ${method} ${path.split('?')[0]} is too large`);
    }
    const text = raw.toString('utf8');
    const parsed = text.trim() === '' ? null : parseJsonLine(text.trim());
    const json = parsed?.ok ? parsed.value : null;
    const status = res.statusCode ?? 0;
    const message = status >= 400 ? String((json as { message?: unknown } | null)?.message ?? text.slice(0, 300)).trim() : '';
    return { status, json, message, text };
  }

  /** A call that must succeed (2xx, or 304 for start/stop of a container already so). */
  async must(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<unknown> {
    const answer = await this.call(method, path, body, timeoutMs);
    if ((answer.status >= 200 && answer.status < 300) || answer.status === 304) return answer.json;
    throw new DockfleetError('engine_unavailable', `engine refused ${method} ${path.split('?')[0]} (${answer.status}): ${answer.message}`);
  }

  /** GET …/json, null on 404. */
  async inspect(kind: 'containers' | 'images' | 'networks' | 'volumes', ref: string): Promise<Record<string, any> | null> {
    const suffix = kind === 'containers' || kind === 'images' ? '/json' : '';
    const answer = await this.call('GET', `/${kind}/${encodeURIComponent(ref)}${suffix}`);
    if (answer.status === 404) return null;
    if (answer.status !== 200) throw new DockfleetError('engine_unavailable', `engine could not inspect ${kind} ${ref} (${answer.status}): ${answer.message}`);
    return answer.json as Record<string, any>;
  }

  /** `PUT /containers/ID/archive?path=…` with a tar body (EngineClient sends JSON bodies only). */
  putArchive(id: string, path: string, tar: Buffer, timeoutMs = 60_000): Promise<EngineAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.#engine.socketPath,
          method: 'PUT',
          timeout: timeoutMs,
          path: `/containers/${encodeURIComponent(id)}/archive?path=${encodeURIComponent(path)}`,
          headers: { 'content-type': 'application/x-tar', 'content-length': tar.length },
        },
        (res) => {
          void readBounded(res as AsyncIterable<Buffer>, 64 * 1024).then((raw) => {
            const text = raw?.toString('utf8') ?? '';
            const parsed = text.trim() === '' ? null : parseJsonLine(text.trim());
            const json = parsed?.ok ? parsed.value : null;
            const status = res.statusCode ?? 0;
            resolve({ status, json, text, message: status >= 400 ? String((json as { message?: unknown } | null)?.message ?? text.slice(0, 300)).trim() : '' });
          }, reject);
        },
      );
      req.on('timeout', () => req.destroy(new DockfleetError('engine_unavailable', 'engine did not answer an archive upload in time')));
      req.on('error', (err) => reject(err instanceof DockfleetError ? err : new DockfleetError('engine_unavailable', `engine at ${this.#engine.socketPath}: ${err.message}`)));
      req.end(tar);
    });
  }

  /** The last `lines` lines of a container's output (stdout and stderr interleaved). */
  async logTail(id: string, lines = 20): Promise<string[]> {
    const res = await this.#engine.raw({ path: `/containers/${encodeURIComponent(id)}/logs?stdout=1&stderr=1&tail=${lines}`, timeoutMs: 10_000 });
    const raw = await readBounded(res as AsyncIterable<Buffer>, MAX_LOG_BYTES);
    if (raw === null || (res.statusCode ?? 0) !== 200) {
      res.destroy();
      return [];
    }
    const demux = new DockerDemuxer();
    const text = demux
      .push(raw)
      .map((frame) => Buffer.from(frame.data).toString('utf8'))
      .join('');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .slice(-lines);
  }

  get client(): EngineClient {
    return this.#engine;
  }
}
