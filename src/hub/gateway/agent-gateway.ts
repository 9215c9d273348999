/**
 * The agents' door: a WebSocket upgrade on the hub's port. The hub challenges, the agent signs
 * (nonce + TLS exported keying material) with its own key, the hub checks the key it holds,
 * and the socket turns into an HTTP/2 session (AgentLink). Anything out of order, oversized,
 * malformed or slow is refused with an error frame and a close; the hub itself never throws.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import {
  CLOSE_CODES, EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, GATEWAY_SUBPROTOCOL, MAX_HANDSHAKE_FRAME, PROTOCOL_VERSION,
  authFrame, authPayload, parseFrame, type AuthFrame, type ErrorFrame,
} from '../../protocol/handshake.ts';
import { DEAD_AFTER_MS, HEARTBEAT_MS } from '../../protocol/heartbeat.ts';
import { verifySignature } from '../../protocol/node-keys.ts';
import type { Store } from '../../store/store.ts';
import type { Logger } from '../../lib/logger.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { AgentLink } from './agent-link.ts';
import { ReconnectLimiter } from './reconnect-limiter.ts';

export interface GatewayOptions {
  store: Store;
  registry: NodeRegistry;
  log: Logger;
  handshakeTimeoutMs?: number;
  limiter?: ReconnectLimiter;
}

/** Binary frames carry HTTP/2; a WebSocket message larger than this is refused. */
const MAX_MESSAGE = 4 * 1024 * 1024;

export class AgentGateway {
  readonly #wss: WebSocketServer;
  readonly #store: Store;
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #handshakeTimeoutMs: number;
  readonly #limiter: ReconnectLimiter;

  constructor(opts: GatewayOptions) {
    this.#store = opts.store;
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 5_000;
    this.#limiter = opts.limiter ?? new ReconnectLimiter();
    this.#wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE,
      handleProtocols: (protocols) => (protocols.has(GATEWAY_SUBPROTOCOL) ? GATEWAY_SUBPROTOCOL : false),
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => void this.#handshake(ws, req.socket as TLSSocket));
  }

  close(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }

  async #handshake(ws: WebSocket, tls: TLSSocket): Promise<void> {
    const abort = new AbortController();
    ws.once('close', () => abort.abort());
    ws.on('error', () => {});
    if (ws.protocol !== GATEWAY_SUBPROTOCOL) return reject(ws, 'protocol_error', `expected subprotocol ${GATEWAY_SUBPROTOCOL}`);
    const timer = setTimeout(() => reject(ws, 'handshake_timeout', 'no authentication within the deadline'), this.#handshakeTimeoutMs);
    const nonce = randomBytes(32).toString('base64url');
    ws.send(JSON.stringify({ t: 'challenge', v: PROTOCOL_VERSION, nonce }));
    try {
      const auth = await firstFrame(ws, abort.signal);
      const link = await this.#authenticate(ws, tls, nonce, auth, abort.signal, timer);
      this.#registry.attach(link);
    } catch (err) {
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#log.error({ err }, 'gateway handshake failed');
      else this.#log.info({ code: e.code, reason: e.message }, 'agent refused');
      reject(ws, e.code, e.message, e.code === 'rate_limited' ? Number(e.cause) : undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  async #authenticate(ws: WebSocket, tls: TLSSocket, nonce: string, auth: AuthFrame, signal: AbortSignal, timer: NodeJS.Timeout): Promise<AgentLink> {
    if (auth.v !== PROTOCOL_VERSION) throw new DockfleetError('protocol_error', `unsupported protocol version ${auth.v} (hub speaks ${PROTOCOL_VERSION})`);
    const key = await this.#store.getNodeKey(auth.keyId);
    const node = key ? this.#registry.byId(key.nodeId) : null;
    const ekm = tls.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT);
    if (!key || !node || node.name !== auth.node || !verifySignature(key.publicKey, authPayload(auth.node, nonce, ekm), auth.sig)) {
      throw new DockfleetError('unauthenticated', 'unknown node key or bad signature');
    }
    if (node.state === 'revoked') throw new DockfleetError('node_revoked', `node ${node.name} was revoked`);
    if (key.state === 'retired') throw new DockfleetError('key_retired', `this key of node ${node.name} was rotated away`);
    const waitMs = this.#limiter.attempt(node.id);
    if (waitMs > 0) throw new DockfleetError('rate_limited', `node ${node.name} reconnects too often; retry in ${Math.ceil(waitMs / 1000)} s`, { cause: waitMs });
    if (node.state === 'pending') {
      clearTimeout(timer);
      ws.send(JSON.stringify({ t: 'pending' }));
      const keepAlive = setInterval(() => ws.ping(), HEARTBEAT_MS);
      const stray = (): void => reject(ws, 'protocol_error', 'frame sent while pending');
      ws.once('message', stray);
      try {
        await this.#registry.waitForApproval(node.id, signal);
      } finally {
        clearInterval(keepAlive);
        ws.off('message', stray);
      }
    }
    ws.send(JSON.stringify({ t: 'welcome', v: PROTOCOL_VERSION, node: node.name, heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS }));
    return new AgentLink({ ws, nodeId: node.id, nodeName: node.name, keyId: key.keyId, log: this.#log });
  }
}

/** Waits for the agent's first frame, which must be a small, valid auth text frame. */
function firstFrame(ws: WebSocket, signal: AbortSignal): Promise<AuthFrame> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new DockfleetError('handshake_timeout', 'connection closed during handshake'));
    signal.addEventListener('abort', onAbort, { once: true });
    ws.once('message', (data, isBinary) => {
      signal.removeEventListener('abort', onAbort);
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      if (isBinary) return reject(new DockfleetError('protocol_error', 'binary frame before authentication'));
      if (buf.length > MAX_HANDSHAKE_FRAME) return reject(new DockfleetError('payload_too_large', 'handshake frame too large'));
      const frame = parseFrame(authFrame, buf.toString('utf8'));
      if (!frame) return reject(new DockfleetError('protocol_error', 'malformed auth frame'));
      resolve(frame);
    });
  });
}

function reject(ws: WebSocket, code: ErrorFrame['code'], message: string, retryAfterMs?: number): void {
  if (ws.readyState !== ws.OPEN) return;
  const frame: ErrorFrame = retryAfterMs === undefined ? { t: 'error', code, message } : { t: 'error', code, message, retryAfterMs };
  ws.send(JSON.stringify(frame));
  ws.close(code === 'protocol_error' || code === 'payload_too_large' ? CLOSE_CODES.protocolError : CLOSE_CODES.rejected);
  setTimeout(() => ws.terminate(), 1_000).unref();
}
