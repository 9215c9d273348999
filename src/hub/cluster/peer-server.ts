/**
 * The peer port of a replica (issue 17): HTTP/2 over mutual TLS, for the other replicas only
 * (their certificates carry REPLICA_CN_PREFIX; an agent's or a person's certificate from the same
 * CA is refused at the handshake's end). Each stream names a node and an epoch; if this replica
 * still holds that node's agent at that epoch, the stream is joined to a new stream on the
 * agent's link: headers forwarded, then the bodies piped both ways, so HTTP/2 flow control runs
 * end to end and a slow reader on either side slows the other. Otherwise it answers 421.
 */
import http2, { type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS } from '../../lib/h2-channel.ts';
import type { Logger } from '../../lib/logger.ts';
import { wasCut } from '../../lib/relay.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import { isReplicaCertificate } from '../pki.ts';
import { PEER_EPOCH_HEADER, PEER_NODE_HEADER, PEER_REFUSED_HEADER, PEER_REFUSED_STATUS, isPeerHeader, type PeerRefusal } from './peer-protocol.ts';

export interface PeerServerOptions {
  tls: { key: string; cert: string; ca: string };
  host: string;
  port: number;
  /** The link this replica holds for `node` at `epoch`, or why it cannot answer for it. */
  resolve: (node: string, epoch: number) => AgentLink | { refused: PeerRefusal; message: string };
  log: Logger;
}

export interface PeerServer {
  readonly port: number;
  /** Stops taking streams; those in flight get `graceMs` (default none) to end before they are cut. */
  close(graceMs?: number): Promise<void>;
}

/** Headers HTTP/2 forbids or that belong to one hop only. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

function forwardable(headers: IncomingHttpHeaders, request: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_HEADERS.has(name) || isPeerHeader(name)) continue;
    if (name.startsWith(':') && !(request ? [':method', ':path'] : [':status']).includes(name)) continue;
    out[name] = value;
  }
  return out;
}

function refuse(stream: ServerHttp2Stream, code: PeerRefusal, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = JSON.stringify({ message, error: { code, message } });
  stream.respond({ ':status': PEER_REFUSED_STATUS, 'content-type': 'application/json', [PEER_REFUSED_HEADER]: code });
  stream.end(body);
}

function join(down: ServerHttp2Stream, up: ClientHttp2Stream, log: Logger, node: string): void {
  up.once('response', (headers) => {
    if (down.destroyed) return;
    down.respond(forwardable(headers, false));
    // Not pipe's own end: an agent stream cut mid-answer still 'ends' in Node (relay.ts).
    up.pipe(down, { end: false });
    up.once('end', () => {
      if (down.destroyed) return;
      if (wasCut(up)) down.close(up.rstCode || http2.constants.NGHTTP2_CANCEL);
      else down.end();
    });
  });
  const cancel = (): void => {
    if (!up.destroyed) up.close(http2.constants.NGHTTP2_CANCEL);
  };
  up.once('error', (err) => {
    log.debug({ node, err: err.message }, 'agent stream for a peer failed');
    if (!down.headersSent) refuse(down, 'node_offline', `node ${node}: ${err.message}`);
    else if (!down.destroyed) down.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  });
  up.once('close', () => {
    // The agent reset its side (no clean end): so does this one, rather than end as if whole.
    if (up.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !down.destroyed && down.headersSent && !down.writableEnded) down.close(up.rstCode);
  });
  down.once('close', cancel);
  down.on('error', cancel);
}

export async function startPeerServer(opts: PeerServerOptions): Promise<PeerServer> {
  const server = http2.createSecureServer({
    key: opts.tls.key,
    cert: opts.tls.cert,
    ca: opts.tls.ca,
    requestCert: true,
    rejectUnauthorized: true,
    settings: H2_SETTINGS,
    maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    if (!isReplicaCertificate(socket.getPeerCertificate())) {
      opts.log.warn({ peer: socket.remoteAddress }, 'refused a peer connection whose certificate is not a replica’s');
      socket.destroy();
    }
  });
  // Node's HTTP/2 server does not list its sessions; close() must end them (peers reconnect elsewhere).
  const live = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    live.add(s);
    s.once('close', () => live.delete(s));
  });
  server.on('sessionError', (err) => opts.log.debug({ err: err.message }, 'peer session error'));
  server.on('stream', (stream, headers, flags) => {
    stream.on('error', () => {});
    const node = headers[PEER_NODE_HEADER];
    const epoch = Number(headers[PEER_EPOCH_HEADER]);
    if (typeof node !== 'string' || !Number.isSafeInteger(epoch) || epoch < 0)
      return refuse(stream, 'bad_request', `a peer stream names a node (${PEER_NODE_HEADER}) and an epoch (${PEER_EPOCH_HEADER})`);
    const target = opts.resolve(node, epoch);
    if (!('openStream' in target)) return refuse(stream, target.refused, target.message);
    // The sender's stream ended with its headers (a GET): so does the agent's.
    const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    let up: ClientHttp2Stream;
    try {
      up = target.openStream(forwardable(headers, true), { endStream });
    } catch (err) {
      return refuse(stream, 'node_offline', (err as Error).message);
    }
    join(stream, up, opts.log, node);
    if (!endStream) stream.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Gracefully: streams in flight (a forwarded download's tail) end first, within graceMs; then the rest is cut.
        for (const s of live)
          if (graceMs > 0) s.close();
          else s.destroy();
        if (graceMs > 0) {
          setTimeout(() => {
            for (const s of live) s.destroy();
          }, graceMs).unref();
        }
      }),
  };
}
