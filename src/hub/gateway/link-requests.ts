/**
 * A call through a link to an agent, read as a head and a body stream, or as bounded JSON: the
 * same for the link a replica holds itself (agent-link.ts) and for one it reaches through the
 * replica that holds it (cluster/remote-link.ts). `open` starts the HTTP/2 stream either way.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { DockfleetError } from '../../protocol/errors.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import type { AgentResponse, LinkRequest } from './agent-link.ts';

export type OpenStream = (headers: Record<string, string | string[]>, opts: { endStream: boolean; signal?: AbortSignal }) => ClientHttp2Stream;

/** Throws when a response head must not be taken as the agent's answer (a replica's refusal). */
export type HeadCheck = (headers: IncomingHttpHeaders) => void;

/** Sends `req` on a stream `open` starts; resolves with the response head and its body stream. */
export function requestOver(open: OpenStream, nodeName: string, req: LinkRequest, check?: HeadCheck): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    let stream: ClientHttp2Stream;
    try {
      stream = open({ ':method': req.method, ':path': req.path, ...req.headers }, { endStream: req.body === undefined, signal: req.signal });
    } catch (err) {
      return reject(err);
    }
    let settled = false;
    // Errors are built only when they are used: a stack trace per call is not free.
    const fail = (make: () => DockfleetError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(make());
    };
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      fail(() => new DockfleetError('node_timeout', `node ${nodeName} did not answer in ${req.timeoutMs} ms`));
    }, req.timeoutMs ?? 30_000);
    stream.once('response', (headers) => {
      if (settled) return;
      try {
        check?.(headers);
      } catch (err) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return fail(() => err as DockfleetError);
      }
      settled = true;
      clearTimeout(timer);
      resolve({ status: Number(headers[':status']), headers, stream });
    });
    stream.once('error', (err) => fail(() => new DockfleetError('node_offline', `node ${nodeName}: ${err.message}`, { cause: err })));
    stream.once('close', () => fail(() => new DockfleetError('node_offline', `node ${nodeName} closed the stream`)));
    if (req.body !== undefined) stream.end(req.body);
  });
}

/** A request whose answer is JSON, read whole (bounded: 1 MiB unless `maxBytes`). */
export async function requestJsonOver(open: OpenStream, nodeName: string, req: LinkRequest & { maxBytes?: number }, check?: HeadCheck): Promise<{ status: number; body: unknown }> {
  const res = await requestOver(open, nodeName, req, check);
  const limit = req.maxBytes ?? 1024 * 1024;
  const raw = await readBounded(res.stream as AsyncIterable<Buffer>, limit);
  if (raw === null) {
    res.stream.close(http2.constants.NGHTTP2_CANCEL);
    throw new DockfleetError('payload_too_large', `answer from ${nodeName} exceeds ${limit} bytes`);
  }
  const text = raw.toString('utf8');
  const parsed = text === '' ? { ok: true as const, value: null } : parseJsonLine(text);
  if (!parsed.ok) throw new DockfleetError('protocol_error', `node ${nodeName} answered with malformed JSON`);
  return { status: res.status, body: parsed.value };
}
