/**
 * The agent's one connection to the hub: dial out (TLS to the pinned CA), upgrade to a
 * WebSocket, answer the hub's challenge with a signature, then serve HTTP/2 over the socket.
 * `runChannel` keeps it up: jittered exponential backoff on failure, an immediate retry with
 * the prepared key after an interrupted rotation, and a stop for good when revoked.
 */
import http2, { type ServerHttp2Session } from 'node:http2';
import { WebSocket } from 'ws';
import { DockfleetError, isErrorCode } from '../protocol/errors.ts';
import {
  EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, GATEWAY_PATH, GATEWAY_SUBPROTOCOL, PROTOCOL_VERSION,
  authPayload, errorFrame, hubFrame, parseFrame, type HubFrame,
} from '../protocol/handshake.ts';
import { DEAD_AFTER_MS, HEARTBEAT_MS } from '../protocol/heartbeat.ts';
import { Backoff, sleep } from '../lib/backoff.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, startHeartbeat, widenSessionWindow } from '../lib/h2-channel.ts';
import { WebSocketDuplex } from '../lib/websocket-duplex.ts';
import type { Logger } from '../lib/logger.ts';
import { dialHub } from './hub-dialer.ts';
import type { TunnelHandler } from './tunnel-handler.ts';

export interface ChannelIdentity {
  readonly node: string;
  readonly keyId: string;
  readonly caPem: string;
  sign(payload: Buffer): string;
  /** Promotes a key prepared for rotation; false when there is none. */
  promoteNextKey?(): Promise<boolean>;
}

export interface ChannelOptions {
  hubUrl: URL;
  identity: ChannelIdentity;
  handler: TunnelHandler;
  log: Logger;
  agentVersion?: string;
  onConnected?: () => void;
  onPending?: () => void;
  backoff?: Backoff;
}

/** Errors after which retrying cannot help: the agent stops and says why. */
const FATAL = new Set(['node_revoked', 'unauthenticated', 'key_retired', 'protocol_error']);
const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_MESSAGE = 4 * 1024 * 1024;

/** Connects once and serves until the link ends. Resolves with the hub's parting words, if any. */
export async function connectOnce(opts: ChannelOptions, signal: AbortSignal): Promise<DockfleetError | null> {
  const { socket } = await dialHub(opts.hubUrl, { caPem: opts.identity.caPem }, signal);
  const url = new URL(GATEWAY_PATH, opts.hubUrl);
  url.protocol = 'wss:';
  const ws = new WebSocket(url, [GATEWAY_SUBPROTOCOL], {
    createConnection: () => socket,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    // RFC 6455 masking guards proxies from scripts in browsers; this client is no browser and
    // the channel is TLS end to end, so a zero mask lets both ends skip XOR-ing every byte.
    generateMask: (mask: Buffer) => void mask.fill(0),
  });
  const onAbort = (): void => ws.terminate();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const frames = frameReader(ws);
    const challenge = await frames.next(HANDSHAKE_TIMEOUT_MS);
    if (challenge.t !== 'challenge') throw new DockfleetError('protocol_error', `hub sent ${challenge.t} before its challenge`);
    const ekm = socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT);
    const { node, keyId } = opts.identity;
    ws.send(JSON.stringify({
      t: 'auth', v: PROTOCOL_VERSION, node, keyId,
      sig: opts.identity.sign(authPayload(node, challenge.nonce, ekm)),
      agentVersion: opts.agentVersion ?? 'dev',
    }));
    let answer = await frames.next(HANDSHAKE_TIMEOUT_MS);
    if (answer.t === 'pending') {
      opts.onPending?.();
      answer = await frames.next(null);
    }
    if (answer.t !== 'welcome') throw new DockfleetError('protocol_error', `unexpected ${answer.t} frame from hub`);
    return await serve(ws, opts, frames.stop());
  } finally {
    signal.removeEventListener('abort', onAbort);
    ws.terminate();
  }
}

async function serve(ws: WebSocket, opts: ChannelOptions, early: Buffer[]): Promise<DockfleetError | null> {
  let parting: DockfleetError | null = null;
  const duplex = new WebSocketDuplex(ws, (text) => {
    const frame = parseFrame(errorFrame, text);
    if (frame) parting = new DockfleetError(isErrorCode(frame.code) ? frame.code : 'internal', frame.message);
  }, early);
  duplex.on('error', () => {});
  const server = http2.createServer({ settings: H2_SETTINGS, maxSessionMemory: H2_MAX_SESSION_MEMORY_MB }, opts.handler);
  const session = await new Promise<ServerHttp2Session>((resolve) => {
    server.once('session', resolve);
    server.emit('connection', duplex);
  });
  widenSessionWindow(session);
  session.on('error', (err) => opts.log.debug({ err }, 'hub session error'));
  const stopHeartbeat = startHeartbeat(session, {
    intervalMs: HEARTBEAT_MS,
    deadAfterMs: DEAD_AFTER_MS,
    onDead: () => {
      opts.log.warn('hub silent too long, reconnecting');
      session.destroy();
      ws.terminate();
    },
  });
  opts.onConnected?.();
  await new Promise<void>((resolve) => ws.once('close', () => resolve()));
  stopHeartbeat();
  if (!session.destroyed) session.destroy();
  return parting;
}

/** Reads handshake frames in order; an error frame from the hub becomes a thrown error. */
function frameReader(ws: WebSocket): { next(timeoutMs: number | null): Promise<Exclude<HubFrame, { t: 'error' }>>; stop(): Buffer[] } {
  const queue: string[] = [];
  // The hub starts HTTP/2 right after its welcome; those bytes can arrive in the same read as
  // the welcome, before this reader is stopped, and must reach the HTTP/2 session.
  const early: Buffer[] = [];
  let wake: (() => void) | null = null;
  let closed: DockfleetError | null = null;
  let lastPing = Date.now();
  const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (isBinary) early.push(buf);
    else queue.push(buf.toString('utf8'));
    wake?.();
  };
  const onClose = (): void => {
    closed ??= new DockfleetError('hub_unreachable', 'hub closed the connection during the handshake');
    wake?.();
  };
  const onError = (err: Error): void => {
    closed ??= new DockfleetError('hub_unreachable', `gateway: ${err.message}`, { cause: err });
    wake?.();
  };
  const onPing = (): void => void (lastPing = Date.now());
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  ws.on('ping', onPing);
  return {
    async next(timeoutMs) {
      const deadline = timeoutMs === null ? null : Date.now() + timeoutMs;
      for (;;) {
        const text = queue.shift();
        if (text !== undefined) {
          const frame = parseFrame(hubFrame, text);
          if (!frame) throw new DockfleetError('protocol_error', 'malformed frame from hub');
          if (early.length > 0 && frame.t !== 'welcome') throw new DockfleetError('protocol_error', 'hub sent binary data during the handshake');
          if (frame.t === 'error') {
            throw new DockfleetError(isErrorCode(frame.code) ? frame.code : 'internal', frame.message, { cause: frame.retryAfterMs });
          }
          return frame;
        }
        if (closed) throw closed;
        // While parked as pending the hub pings; silence means the hub is gone.
        const wait = deadline === null ? HEARTBEAT_MS : deadline - Date.now();
        if (deadline !== null && wait <= 0) throw new DockfleetError('handshake_timeout', 'hub did not answer the handshake in time');
        if (deadline === null && Date.now() - lastPing > DEAD_AFTER_MS) throw new DockfleetError('hub_unreachable', 'hub went silent while this node was pending');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    },
    stop() {
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      ws.off('ping', onPing);
      return early.splice(0);
    },
  };
}

/** Keeps the channel up until `signal` aborts; throws only for fatal refusals. */
export async function runChannel(opts: ChannelOptions, signal: AbortSignal): Promise<void> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000 });
  while (!signal.aborted) {
    let failure: DockfleetError | null = null;
    try {
      failure = await connectOnce({ ...opts, onConnected: () => { backoff.reset(); opts.onConnected?.(); } }, signal);
    } catch (err) {
      failure = err instanceof DockfleetError ? err : new DockfleetError('hub_unreachable', (err as Error).message, { cause: err });
    }
    if (signal.aborted) return;
    if (failure?.code === 'key_retired' && (await opts.identity.promoteNextKey?.())) {
      opts.log.info('hub had already switched to the prepared key; using it');
      continue;
    }
    if (failure && FATAL.has(failure.code)) throw failure;
    let delay = backoff.next();
    if (failure?.code === 'rate_limited' && typeof failure.cause === 'number') delay = Math.max(delay, failure.cause);
    if (failure) opts.log.info({ code: failure.code, reason: failure.message, retryInMs: delay }, 'hub link down');
    await sleep(delay, signal).catch(() => {});
  }
}
