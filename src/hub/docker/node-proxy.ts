/**
 * One ordinary Docker API call to one node: the client's request becomes an HTTP/2 stream to
 * the agent, and the answer streams back, both ways with backpressure. A client that goes away
 * cancels the stream, which stops the engine call on the host (log follows, stats, events).
 * A bulk answer yields to interactive calls on the same link (link-qos.ts).
 *
 * Signed intent (issue 13): the client's `x-dockfleet-intent` and `x-dockfleet-intent-body` go
 * to the agent unchanged (every other x-dockfleet-* header of the client's is dropped), and the
 * hub adds its own `x-dockfleet-actor` and `x-dockfleet-audit-ref` for the host's log.
 */
import type http2 from 'node:http2';
import type { IncomingHttpHeaders as H2Headers } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { POLICY_REFUSAL_HEADER, clientRequestHeaders, forwardableHeaders } from '../../protocol/docker-tunnel.ts';
import { ACTOR_HEADER, AUDIT_REF_HEADER, INTENT_BODY_HEADER, INTENT_HEADER } from '../../protocol/intent.ts';
import { DockfleetError } from '../../protocol/errors.ts';
import { cancelUnlessDone, sendBody } from '../../lib/h2-channel.ts';
import { relay } from '../../lib/relay.ts';
import type { NodeLink } from '../node-registry.ts';
import { BULK_AFTER_BYTES } from '../gateway/link-qos.ts';
import { writeDockerError } from './docker-errors.ts';

/** Headers the client sends that are for the hub, not for the agent or the engine (and every
 * x-dockfleet-* header, dropped by clientRequestHeaders). */
export const CLIENT_ONLY_HEADERS = new Set(['authorization', 'cookie', 'origin', 'referer']);

/** Who the hub says is asking, for the host's audit log (the client can never set these). */
export interface CallOrigin {
  actor?: string;
  auditRef?: number | null;
}

/** The signed-intent headers the client sent (passed on unchanged) and the hub's own hints. */
export function intentForwardHeaders(headers: IncomingMessage['headers'], origin: CallOrigin = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [INTENT_HEADER, INTENT_BODY_HEADER]) {
    const value = headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  if (origin.actor !== undefined) out[ACTOR_HEADER] = origin.actor;
  if (origin.auditRef !== undefined && origin.auditRef !== null) out[AUDIT_REF_HEADER] = String(origin.auditRef);
  return out;
}

/** Response headers from the agent, ready for an HTTP/1.1 client. */
export function responseHeaders(headers: H2Headers): Record<string, string | string[]> {
  return forwardableHeaders(headers as Record<string, string | string[] | undefined>, new Set(['x-dockfleet-upgraded']));
}

/** How a proxied call ended: the status sent, and whether the host's policy refused it. */
export interface ProxyOutcome {
  status: number;
  refusedByPolicy: boolean;
}

/** Streams the client's request to `agentPath` on the node's agent and the answer back. */
export function proxyToAgent(link: NodeLink, agentPath: string, req: IncomingMessage, res: ServerResponse, origin: CallOrigin = {}): Promise<ProxyOutcome> {
  let refusedByPolicy = false;
  return new Promise<number>((resolve) => {
    // A client that left while the hub was still checking it: its 'close' has been and gone.
    if (req.socket.destroyed) return resolve(499);
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.openStream(
        { ':method': req.method ?? 'GET', ':path': agentPath, ...clientRequestHeaders(req.headers, CLIENT_ONLY_HEADERS), ...intentForwardHeaders(req.headers, origin) },
        { endStream: !hasBody },
      );
    } catch (err) {
      writeDockerError(res, err as DockfleetError);
      return resolve((err as DockfleetError).status);
    }
    let status = 502;
    // Interactive until the answer turns out to be bulk (link-qos.ts).
    const endInteractive = link.qos.begin();
    stream.once('close', endInteractive);
    stream.once('response', (headers) => {
      status = Number(headers[':status']);
      refusedByPolicy = headers[POLICY_REFUSAL_HEADER] !== undefined;
      res.writeHead(status, responseHeaders(headers));
      // Long streams (logs -f, events, stats; no content-length) must reach the client as
      // they come; a sized answer goes out with its body in one write.
      if (headers['content-length'] === undefined) res.flushHeaders();
      res.once('close', () => resolve(status));
      const copy = relay(stream, res);
      let bytes = 0;
      const countBytes = (chunk: Buffer): void => {
        bytes += chunk.length;
        if (bytes < BULK_AFTER_BYTES) return;
        stream.off('data', countBytes);
        endInteractive();
        copy.gate(link.qos);
      };
      stream.on('data', countBytes);
    });
    stream.once('error', (err) => {
      if (!res.headersSent) writeDockerError(res, new DockfleetError('node_offline', `node ${link.nodeName} went away: ${err.message}`));
      else res.destroy();
      resolve(status);
    });
    stream.once('close', () => {
      if (!res.headersSent) {
        writeDockerError(res, new DockfleetError('node_offline', `node ${link.nodeName} closed the call before answering`));
        resolve(status);
      }
    });
    res.once('close', () => {
      cancelUnlessDone(stream);
    });
    if (hasBody) {
      sendBody(req, stream);
      // The answer is whole while the client still sends its body (the engine answered before
      // reading it: a 404, a refusal): stop sending, and reset the stream.
      stream.once('end', () => {
        if (stream.writableFinished) return;
        req.unpipe(stream);
        cancelUnlessDone(stream);
      });
    }
  }).then((status) => ({ status, refusedByPolicy }));
}
