/**
 * HTTPS to the ACME server: trusts the system roots plus `--acme-ca` (e.g. pebble's own
 * certificate) for this client only, never the process's global agent; a deadline on every
 * request, answers capped in size, keep-alive between the steps of an order. Anything that keeps
 * a request from being answered becomes an `unreachable` AcmeFailure naming the server.
 */
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { AcmeFailure } from './acme-failure.ts';

/** Directory, order and authorization objects are small; a certificate chain is a few KB. */
const MAX_ANSWER_BYTES = 1024 * 1024;

export interface AcmeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface AcmeRequest {
  method: 'GET' | 'HEAD' | 'POST';
  url: string;
  body?: string;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
}

export class AcmeTransport {
  readonly #agent: https.Agent;
  readonly #timeoutMs: number;
  readonly #freshTls: { ca?: string[] };

  constructor(opts: { extraCaPem: string | null; timeoutMs: number }) {
    const ca = opts.extraCaPem === null ? undefined : [...tls.rootCertificates, opts.extraCaPem];
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 4, ...(ca ? { ca } : {}) });
    this.#timeoutMs = opts.timeoutMs;
    this.#freshTls = ca ? { ca } : {};
  }

  /** One request; retried once at once when a kept-alive connection turned out closed (the request never left). */
  async request(req: AcmeRequest): Promise<AcmeAnswer> {
    try {
      return await this.#once(req);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      return this.#once(req, true);
    }
  }

  #once(req: AcmeRequest, fresh = false): Promise<AcmeAnswer> {
    const url = new URL(req.url);
    if (url.protocol !== 'https:') return Promise.reject(new AcmeFailure('protocol', `ACME URLs must be https, not ${url.protocol}`));
    const headers: Record<string, string> = { 'user-agent': 'dockfleet-acme' };
    if (req.contentType) headers['content-type'] = req.contentType;
    if (req.accept) headers.accept = req.accept;
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    return new Promise<AcmeAnswer>((resolve, reject) => {
      const unreachable = (why: string): AcmeFailure => new AcmeFailure('unreachable', `ACME server unreachable (${url.origin}): ${why}`);
      const r = https.request(
        url,
        { method: req.method, headers, agent: fresh ? false : this.#agent, ...(fresh ? this.#freshTls : {}), timeout: this.#timeoutMs, ...(req.signal ? { signal: req.signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER_BYTES) {
              res.destroy();
              reject(new AcmeFailure('protocol', `ACME server sent more than ${MAX_ANSWER_BYTES} bytes for ${url.pathname}`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (err) => reject(unreachable(err.message)));
        },
      );
      r.on('timeout', () => r.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      r.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') reject(new AcmeFailure('timeout', 'ACME order stopped: the hub is closing'));
        else if (r.reusedSocket && err.code === 'ECONNRESET' && !fresh) reject(new StaleConnection());
        else reject(unreachable(err.message));
      });
      r.end(req.body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

class StaleConnection extends Error {}
