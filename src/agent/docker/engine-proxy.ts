/**
 * The agent's end of the Docker gateway: one hub stream in, one engine request out, bytes
 * piped both ways with backpressure. A hijacked call (attach/exec) becomes a raw duplex pipe
 * between the HTTP/2 stream and the engine's upgraded socket once the engine says 101.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import { BODY_LENGTH_HEADER, DOCKER_PREFIX, POLICY_REFUSAL_HEADER, UPGRADED_HEADER, UPGRADE_HEADER, dockerErrorBody, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import type { Logger } from '../../lib/logger.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import { relay } from '../../lib/relay.ts';
import { EngineHttp } from './engine-http.ts';

export interface EngineTarget {
  socketPath: string;
}

export type GateVerdict = { allowed: true } | { allowed: false; reason: string };

/** The part of a Docker request the policy needs; the proxy buffers the body only when asked. */
export interface DockerGate {
  /** Whether this request's body must be read (bounded) before deciding. */
  needsBody(method: string, path: string): boolean;
  /** May consult the engine and the host's filesystem (policy-gate.ts); never rejects. */
  check(method: string, path: string, body: Buffer | null): GateVerdict | Promise<GateVerdict>;
}

/** Every refusal by this host's policy is logged here, on the host: method, path, reason. Never
 * the body, nor the query (a remote build URL may carry a token); reasons never quote secrets. */
function logRefusal(log: Logger, method: string, path: string, reason: string): void {
  log.warn({ method, path: path.split('?')[0], reason }, 'docker call refused by local policy');
}

export const MAX_INSPECTED_BODY = 1024 * 1024;

function sendError(res: Http2ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) return void res.stream.close();
  const body = dockerErrorBody(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** Reads exactly `length` bytes and leaves anything after them in the stream. */
async function readExactly(req: Http2ServerRequest, length: number, limit: number): Promise<Buffer | null> {
  if (!Number.isInteger(length) || length < 0 || length > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  while (size < length) {
    const chunk = (req.read() as Buffer | null) ?? (await new Promise<Buffer | null>((resolve) => {
      const done = (): void => {
        req.off('readable', onReadable);
        req.off('end', onEnd);
      };
      const onReadable = (): void => { done(); resolve((req.read() as Buffer | null) ?? Buffer.alloc(0)); };
      const onEnd = (): void => { done(); resolve(null); };
      req.once('readable', onReadable);
      req.once('end', onEnd);
    }));
    if (chunk === null) return null;
    const need = length - size;
    if (chunk.length > need) {
      req.unshift(chunk.subarray(need));
      chunks.push(chunk.subarray(0, need));
      size = length;
    } else {
      chunks.push(chunk);
      size += chunk.length;
    }
  }
  return Buffer.concat(chunks, length);
}

export function createEngineProxy(engine: EngineTarget, gate: DockerGate, log: Logger) {
  const engineHttp = new EngineHttp(engine.socketPath);
  return async function proxy(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const path = req.url.slice(DOCKER_PREFIX.length) || '/';
    const method = req.method;
    const upgrade = req.headers[UPGRADE_HEADER] !== undefined;
    let body: Buffer | null = null;
    if (upgrade) {
      // The body and the raw stream share the HTTP/2 stream: take exactly Content-Length.
      body = await readExactly(req, Number(req.headers[BODY_LENGTH_HEADER] ?? 0), MAX_INSPECTED_BODY);
      if (body === null) {
        logRefusal(log, method, path, 'hijacked request with a malformed or oversized body');
        return sendError(res, 400, 'hijacked request with a malformed or oversized body');
      }
    } else if (gate.needsBody(method, path)) {
      body = await readBounded(req as AsyncIterable<Buffer>, MAX_INSPECTED_BODY);
      if (body === null) {
        const reason = `request body over ${MAX_INSPECTED_BODY} bytes cannot be inspected by this host's policy`;
        logRefusal(log, method, path, reason);
        return sendError(res, 413, reason, { [POLICY_REFUSAL_HEADER]: 'refused' });
      }
    }
    const verdict = await gate.check(method, path, body);
    if (!verdict.allowed) {
      logRefusal(log, method, path, verdict.reason);
      return sendError(res, 403, verdict.reason, { [POLICY_REFUSAL_HEADER]: 'refused' });
    }
    // The hub's caller may have gone while the host was being checked.
    if (res.stream.destroyed) return;
    const headers = forwardableHeaders(req.headers as Record<string, string | string[] | undefined>, new Set([UPGRADE_HEADER, BODY_LENGTH_HEADER, 'content-length']));
    if (body !== null) headers['content-length'] = String(body.length);
    else if (req.headers['content-length'] !== undefined) headers['content-length'] = String(req.headers['content-length']);
    if (!upgrade) {
      // An ordinary call: our own HTTP/1.1 client (engine-http.ts), the bulk path.
      const bodySource = body !== null ? body : req.stream.endAfterHeaders ? null : req;
      const abortCall = engineHttp.request(
        { method, path, headers: { ...headers, host: 'docker' }, body: bodySource },
        (engineRes) => {
          res.writeHead(engineRes.statusCode, forwardableHeaders(engineRes.headers));
          relay(engineRes, res.stream);
        },
        (err) => sendError(res, 502, `dockfleet agent could not reach the Docker engine: ${err.message}`),
      );
      // The hub (or its client) went away: stop the engine call too (log follows, stats, …).
      res.once('close', abortCall);
      return;
    }

    // A hijacked call (attach, exec start): Node's client hands over the upgraded socket.
    Object.assign(headers, { connection: 'Upgrade', upgrade: 'tcp' });
    const out = http.request({ socketPath: engine.socketPath, method, path, headers: { ...headers, host: 'docker' } });
    res.once('close', () => void out.destroy());
    out.once('response', (engineRes: IncomingMessage) => {
      // The engine answered without switching protocols (an error, usually): pass it on.
      res.writeHead(engineRes.statusCode ?? 502, forwardableHeaders(engineRes.headers));
      relay(engineRes, res.stream);
    });
    out.once('upgrade', (engineRes: IncomingMessage, socket: Socket, head: Buffer) => {
      res.writeHead(200, { ...forwardableHeaders(engineRes.headers), [UPGRADED_HEADER]: String(engineRes.statusCode ?? 101) });
      if (head.length > 0) res.write(head);
      // Engine → hub until the engine closes; hub → engine, with its end as the engine's stdin EOF.
      socket.on('error', () => res.stream.close());
      socket.pipe(res);
      req.pipe(socket);
      res.once('close', () => socket.destroy());
    });
    out.once('error', (err) => sendError(res, 502, `dockfleet agent could not reach the Docker engine: ${err.message}`));
    out.end(body ?? undefined);
  };
}
