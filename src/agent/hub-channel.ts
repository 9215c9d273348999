/**
 * The agent's one connection to the hub: dial out (TLS to the pinned CA), upgrade (a WebSocket
 * upgrade, see gateway-stream.ts), answer the hub's challenge with a signature, then serve
 * HTTP/2 on the socket itself. `runChannel` keeps it up: jittered exponential backoff on
 * failure, an immediate retry with the prepared key after an interrupted rotation, and a stop
 * for good when revoked.
 */
import http2, { type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { DockfleetError, isErrorCode } from '../protocol/errors.ts';
import type { HandshakeStream } from '../protocol/gateway-stream.ts';
import { EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, PROTOCOL_VERSION, authPayload, errorFrame, hubFrame, parseFrame, type HubFrame } from '../protocol/handshake.ts';
import { DEAD_AFTER_MS, HEARTBEAT_MS } from '../protocol/heartbeat.ts';
import { Backoff, sleep } from '../lib/backoff.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, WindowSizer, startHeartbeat, widenSessionWindow } from '../lib/h2-channel.ts';
import type { Logger } from '../lib/logger.ts';
import { dialHub } from './hub-dialer.ts';
import { upgradeToGateway } from './gateway-upgrade.ts';
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

const hubHungUp = (): DockfleetError => new DockfleetError('hub_unreachable', 'hub closed the connection during the handshake');

/** Connects once and serves until the link ends. Resolves with the hub's parting words, if any. */
export async function connectOnce(opts: ChannelOptions, signal: AbortSignal): Promise<DockfleetError | null> {
  const { socket } = await dialHub(opts.hubUrl, { caPem: opts.identity.caPem }, signal);
  const onAbort = (): void => void socket.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const hs = await upgradeToGateway(socket, opts.hubUrl, HANDSHAKE_TIMEOUT_MS);
    const challenge = await nextFrame(hs, HANDSHAKE_TIMEOUT_MS);
    if (challenge.t !== 'challenge') throw new DockfleetError('protocol_error', `hub sent ${challenge.t} before its challenge`);
    const ekm = socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT);
    const { node, keyId } = opts.identity;
    hs.send({
      t: 'auth',
      v: PROTOCOL_VERSION,
      node,
      keyId,
      sig: opts.identity.sign(authPayload(node, challenge.nonce, ekm)),
      agentVersion: opts.agentVersion ?? 'dev',
    });
    let answer = await nextFrame(hs, HANDSHAKE_TIMEOUT_MS);
    if (answer.t === 'pending') {
      opts.onPending?.();
      // While parked as pending the hub sends keepalives; silence means the hub is gone.
      do answer = await nextFrame(hs, DEAD_AFTER_MS, 'hub went silent while this node was pending');
      while (answer.t === 'keepalive');
    }
    if (answer.t !== 'welcome') throw new DockfleetError('protocol_error', `unexpected ${answer.t} frame from hub`);
    return await serve(hs.release(), opts);
  } finally {
    signal.removeEventListener('abort', onAbort);
    socket.destroy();
  }
}

/** The next handshake frame from the hub; an error frame from the hub becomes a thrown error. */
async function nextFrame(hs: HandshakeStream, timeoutMs: number, silence?: string): Promise<Exclude<HubFrame, { t: 'error' }>> {
  let line: string;
  try {
    line = await hs.next(timeoutMs, hubHungUp);
  } catch (err) {
    if (silence && err instanceof DockfleetError && err.code === 'handshake_timeout') throw new DockfleetError('hub_unreachable', silence);
    throw err;
  }
  const frame = parseFrame(hubFrame, line);
  if (!frame) throw new DockfleetError('protocol_error', 'malformed frame from hub');
  if (frame.t === 'error') throw new DockfleetError(isErrorCode(frame.code) ? frame.code : 'internal', frame.message, { cause: frame.retryAfterMs });
  return frame;
}

async function serve(socket: TLSSocket, opts: ChannelOptions): Promise<DockfleetError | null> {
  let parting: DockfleetError | null = null;
  // Node's HTTP/2 server treats a TLS socket whose ALPN is not h2 as an HTTP/1.1 client and drops
  // it. Here HTTP/2 starts after an HTTP/1.1 upgrade, so the ALPN result says nothing about it.
  socket.alpnProtocol = null;
  const server = http2.createServer({ settings: H2_SETTINGS, maxSessionMemory: H2_MAX_SESSION_MEMORY_MB }, opts.handler);
  const session = await new Promise<ServerHttp2Session>((resolve) => {
    server.once('session', resolve);
    server.emit('connection', socket);
  });
  // HTTP/2 reads the socket natively; flowing lets its end and errors reach JavaScript.
  socket.resume();
  widenSessionWindow(session);
  // Uploads (docker cp into a container, load, build contexts) flow into this side's windows.
  const windows = new WindowSizer(session, (window, rttMs) => opts.log.debug({ rttMs, window }, 'stream windows sized to the link'));
  windows.probe();
  session.on('error', (err) => opts.log.debug({ err }, 'hub session error'));
  // The hub's parting words (revoked, replaced, …) come as an error frame in GOAWAY's debug data.
  session.on('goaway', (_code, _lastStreamId, data?: Buffer) => {
    const frame = data && data.length > 0 ? parseFrame(errorFrame, data.toString('utf8')) : null;
    if (!frame) return;
    parting = new DockfleetError(isErrorCode(frame.code) ? frame.code : 'internal', frame.message);
    socket.destroy();
  });
  const stopHeartbeat = startHeartbeat(session, {
    intervalMs: HEARTBEAT_MS,
    deadAfterMs: DEAD_AFTER_MS,
    onRtt: (ms) => windows.sample(ms),
    onDead: () => {
      opts.log.warn('hub silent too long, reconnecting');
      session.destroy();
      socket.destroy();
    },
  });
  opts.onConnected?.();
  await new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  stopHeartbeat();
  if (!session.destroyed) session.destroy();
  return parting;
}

/** Keeps the channel up until `signal` aborts; throws only for fatal refusals. */
export async function runChannel(opts: ChannelOptions, signal: AbortSignal): Promise<void> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000 });
  while (!signal.aborted) {
    let failure: DockfleetError | null = null;
    try {
      failure = await connectOnce(
        {
          ...opts,
          onConnected: () => {
            backoff.reset();
            opts.onConnected?.();
          },
        },
        signal,
      );
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
