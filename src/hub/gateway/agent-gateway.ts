/**
 * The agents' door: a WebSocket upgrade on the hub's port (gateway-stream.ts). The hub
 * challenges, the agent signs (nonce + TLS exported keying material) with its own key, the hub
 * checks the key it holds, and the socket turns into an HTTP/2 session (AgentLink). Anything
 * out of order, oversized, malformed or slow is refused with an error line and a close; the
 * hub itself never throws. With several replicas (issue 17) the welcome carries the replicas
 * agents may dial, a changed list is pushed to the agents linked here, and a draining gateway
 * (cluster/drain.ts) refuses new links while it moves its agents elsewhere.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { DockfleetError, toDockfleetError } from '../../protocol/errors.ts';
import { AGENT_STREAM_START, HUB_STREAM_START, HandshakeStream, answerUpgrade, refuseUpgrade } from '../../protocol/gateway-stream.ts';
import { EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, MAX_REPLICAS, PROTOCOL_VERSION, REPLICAS_PATH, authFrame, authPayload, parseFrame, type AuthFrame, type ErrorFrame } from '../../protocol/handshake.ts';
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
  /** The replicas agents may dial (agent-facing https:// URLs); absent or empty for a single hub. */
  replicas?: () => string[];
  /** This replica's own agent-facing URL, left out of the list a draining replica hands out. */
  selfUrl?: string;
}

const closedDuringHandshake = (): DockfleetError => new DockfleetError('handshake_timeout', 'connection closed during handshake');

export class AgentGateway {
  readonly #store: Store;
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #handshakeTimeoutMs: number;
  readonly #limiter: ReconnectLimiter;
  readonly #handshaking = new Set<Duplex>();
  readonly #replicas: (() => string[]) | null;
  readonly #selfUrl: string | null;
  /** Links this gateway made that are still open (a drain moves them). */
  readonly #links = new Set<AgentLink>();
  #lastPushed = '';
  #draining = false;

  constructor(opts: GatewayOptions) {
    this.#store = opts.store;
    this.#registry = opts.registry;
    this.#log = opts.log;
    this.#handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 5_000;
    this.#limiter = opts.limiter ?? new ReconnectLimiter();
    this.#replicas = opts.replicas ?? null;
    this.#selfUrl = opts.selfUrl ?? null;
  }

  /** The replica list as agents get it now (empty: a single hub, say nothing). */
  replicaList(): string[] {
    if (!this.#replicas) return [];
    try {
      return [...new Set(this.#replicas())].slice(0, MAX_REPLICAS);
    } catch (err) {
      this.#log.warn({ err }, 'replica list unavailable');
      return [];
    }
  }

  /** True when this hub hands out a replica list (a cluster): its close drains its agents. */
  get clustered(): boolean {
    return this.#replicas !== null;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Stops taking agent links and returns those open now, with the list (less this replica) they
   * should move to; used by cluster/drain.ts. */
  beginDrain(selfUrl?: string): { links: AgentLink[]; replicas: string[] } {
    this.#draining = true;
    for (const socket of this.#handshaking) socket.destroy();
    const own = selfUrl ?? this.#selfUrl;
    const self = own ? new URL(own).origin : null;
    const replicas = this.replicaList().filter((u) => new URL(u).origin !== self);
    return { links: [...this.#links], replicas };
  }

  /** Tells the agents linked here about a changed replica list (members joined, left, drained).
   * Agents that predate the list answer 404, which is fine: they keep their one hub. */
  pushReplicas(): void {
    const replicas = this.replicaList();
    const text = JSON.stringify({ replicas });
    if (this.#draining || replicas.length === 0 || text === this.#lastPushed) return;
    this.#lastPushed = text;
    const body = Buffer.from(text);
    for (const link of this.#links) {
      link
        .requestJson({ method: 'PUT', path: REPLICAS_PATH, headers: { 'content-type': 'application/json' }, body, timeoutMs: 10_000, maxBytes: 4096 })
        .catch((err: unknown) => this.#log.debug({ err, node: link.nodeName }, 'replica list not delivered'));
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    // A draining replica takes no new agents: they dial another one.
    if (this.#draining) return refuseUpgrade(socket, 503, 'this hub replica is draining; dial another');
    const verdict = answerUpgrade(req);
    if (!verdict.ok) return refuseUpgrade(socket, verdict.status, verdict.message);
    socket.write(Buffer.concat([Buffer.from(verdict.response, 'latin1'), HUB_STREAM_START]));
    if (head.length > 0) socket.unshift(head);
    this.#handshaking.add(socket);
    socket.once('close', () => this.#handshaking.delete(socket));
    // The hub listens with TLS only: every upgraded socket is a TLSSocket.
    void this.#handshake(new HandshakeStream(socket as TLSSocket, AGENT_STREAM_START));
  }

  close(): void {
    for (const socket of this.#handshaking) socket.destroy();
  }

  async #handshake(hs: HandshakeStream<TLSSocket>): Promise<void> {
    const tls = hs.socket;
    const abort = new AbortController();
    tls.once('close', () => abort.abort());
    const timer = setTimeout(() => {
      abort.abort();
      refuse(hs, 'handshake_timeout', 'no authentication within the deadline');
    }, this.#handshakeTimeoutMs);
    const nonce = randomBytes(32).toString('base64url');
    hs.send({ t: 'challenge', v: PROTOCOL_VERSION, nonce });
    try {
      const auth = await firstFrame(hs, abort.signal);
      const link = await this.#authenticate(hs, nonce, auth, abort.signal, timer);
      this.#handshaking.delete(tls);
      this.#links.add(link);
      link.once('close', () => this.#links.delete(link));
      this.#registry.attach(link);
    } catch (err) {
      if (abort.signal.aborted) return;
      const e = toDockfleetError(err);
      if (e.code === 'internal') this.#log.error({ err }, 'gateway handshake failed');
      else this.#log.info({ code: e.code, reason: e.message }, 'agent refused');
      refuse(hs, e.code, e.message, e.code === 'rate_limited' ? Number(e.cause) : undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  async #authenticate(hs: HandshakeStream<TLSSocket>, nonce: string, auth: AuthFrame, signal: AbortSignal, timer: NodeJS.Timeout): Promise<AgentLink> {
    if (auth.v !== PROTOCOL_VERSION) throw new DockfleetError('protocol_error', `unsupported protocol version ${auth.v} (hub speaks ${PROTOCOL_VERSION})`);
    const key = await this.#store.getNodeKey(auth.keyId);
    const node = key ? this.#registry.byId(key.nodeId) : null;
    const ekm = hs.socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT);
    if (!key || !node || node.name !== auth.node || !verifySignature(key.publicKey, authPayload(auth.node, nonce, ekm), auth.sig)) {
      throw new DockfleetError('unauthenticated', 'unknown node key or bad signature');
    }
    if (node.state === 'revoked') throw new DockfleetError('node_revoked', `node ${node.name} was revoked`);
    if (key.state === 'retired') throw new DockfleetError('key_retired', `this key of node ${node.name} was rotated away`);
    const waitMs = this.#limiter.attempt(node.id);
    if (waitMs > 0) throw new DockfleetError('rate_limited', `node ${node.name} reconnects too often; retry in ${Math.ceil(waitMs / 1000)} s`, { cause: waitMs });
    if (node.state === 'pending') {
      clearTimeout(timer);
      hs.send({ t: 'pending' });
      const keepAlive = setInterval(() => hs.send({ t: 'keepalive' }), HEARTBEAT_MS);
      // The agent has nothing to say while it waits: any line, or a hang-up, ends the wait.
      const approved = new AbortController();
      const stray = hs.next(null, closedDuringHandshake, approved.signal).then(
        () => {
          throw new DockfleetError('protocol_error', 'frame sent while pending');
        },
        (err: unknown) => {
          if (!approved.signal.aborted) throw err;
        },
      );
      try {
        await Promise.race([this.#registry.waitForApproval(node.id, signal), stray]);
      } finally {
        approved.abort();
        clearInterval(keepAlive);
      }
    }
    const replicas = this.replicaList();
    await hs.sendLast({ t: 'welcome', v: PROTOCOL_VERSION, node: node.name, heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS, ...(replicas.length > 0 ? { replicas } : {}) });
    return new AgentLink({ socket: hs.release(), nodeId: node.id, nodeName: node.name, keyId: key.keyId, log: this.#log, agentVersion: auth.agentVersion });
  }
}

/** Reads the agent's first line, which must be a valid auth frame. */
async function firstFrame(hs: HandshakeStream, signal: AbortSignal): Promise<AuthFrame> {
  const line = await hs.next(null, closedDuringHandshake, signal);
  const frame = parseFrame(authFrame, line);
  if (!frame) throw new DockfleetError('protocol_error', 'malformed auth frame');
  return frame;
}

function refuse(hs: HandshakeStream, code: ErrorFrame['code'], message: string, retryAfterMs?: number): void {
  if (hs.socket.destroyed || hs.socket.writableEnded) return;
  const frame: ErrorFrame = retryAfterMs === undefined ? { t: 'error', code, message } : { t: 'error', code, message, retryAfterMs };
  hs.send(frame);
  hs.end();
}
