/**
 * The agent's one connection to the hub: dial out (TLS to the pinned CA), upgrade (a WebSocket
 * upgrade, see gateway-stream.ts), answer the hub's challenge with a signature, then serve
 * HTTP/2 on the socket itself. `runChannel` keeps it up: jittered exponential backoff on
 * failure, an immediate retry with the prepared key after an interrupted rotation, and a stop
 * for good when revoked. With several hub replicas (issue 17) it redials the one it was on, then
 * the others in turn; a draining replica's "move" makes it dial another at once while the calls
 * in flight on the old link finish.
 */
import http2, { type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { DockfleetError, isErrorCode } from '../protocol/errors.ts';
import type { HandshakeStream } from '../protocol/gateway-stream.ts';
import { EKM_CONTEXT, EKM_LABEL, EKM_LENGTH, PROTOCOL_VERSION, authPayload, errorFrame, hubFrame, moveFrame, parseFrame, type HubFrame, type MoveFrame } from '../protocol/handshake.ts';
import { DEAD_AFTER_MS, HEARTBEAT_MS } from '../protocol/heartbeat.ts';
import { Backoff, sleep } from '../lib/backoff.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, WindowSizer, startHeartbeat, widenSessionWindow } from '../lib/h2-channel.ts';
import type { Logger } from '../lib/logger.ts';
import { dialHub } from './hub-dialer.ts';
import { upgradeToGateway } from './gateway-upgrade.ts';
import type { ReplicaList } from './replica-list.ts';
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
  /** The replicas to dial in turn (issue 17); without it, `hubUrl` alone. */
  replicas?: ReplicaList;
  /** The hub's replica list, as its welcome carried it (absent from a single or older hub). */
  onReplicas?: (replicas: string[]) => Promise<void>;
  /**
   * A slot held from each dial until the link is up (welcomed, or parked as pending) or the
   * attempt failed. A real agent has none. A process running thousands of simulated agents
   * passes one, so that a reconnect storm handshakes a few at a time and its event loop keeps
   * the linked ones' heartbeats on time.
   */
  dialGate?: (signal: AbortSignal) => Promise<() => void>;
}

/** Errors after which retrying cannot help: the agent stops and says why. */
const FATAL = new Set(['node_revoked', 'unauthenticated', 'key_retired', 'protocol_error']);
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A drained link whose calls have not ended by then is cut here (the hub bounds it too). */
const MOVED_LINK_LINGER_MS = 60_000;

/** How a link ended: the hub's parting words, or a move to another replica. */
interface LinkEnd {
  parting: DockfleetError | null;
  moved: MoveFrame | null;
}

const hubHungUp = (): DockfleetError => new DockfleetError('hub_unreachable', 'hub closed the connection during the handshake');

/** Connects once and serves until the link ends. Resolves with the hub's parting words, if any. */
export async function connectOnce(opts: ChannelOptions, signal: AbortSignal): Promise<DockfleetError | null> {
  return (await linkOnce(opts, signal)).parting;
}

async function linkOnce(opts: ChannelOptions, signal: AbortSignal): Promise<LinkEnd> {
  const { socket } = await dialHub(opts.hubUrl, { caPem: opts.identity.caPem }, signal);
  const onAbort = (): void => void socket.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  let handedOff = false;
  try {
    const hs = await upgradeToGateway(socket, opts.hubUrl, HANDSHAKE_TIMEOUT_MS);
    const challenge = await nextFrame(hs, HANDSHAKE_TIMEOUT_MS);
    if (challenge.t !== 'challenge') throw new DockfleetError('protocol_error', `hub sent ${challenge.t} before its challenge`);
    const ekm = socket.exportKeyingMaterial(EKM_LENGTH, EKM_LABEL, EKM_CONTEXT);
    const { node, keyId } = opts.identity;
    // Awaited: HTTP/2 takes this socket over after the answer, and Node aborts the process (an
    // assertion in its TLS layer) if the session writes while a write of ours is still in flight.
    await hs.sendLast({
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
    // Kept (durably, when it changed) before the link serves: a restart finds it in the state dir.
    if (answer.replicas && answer.replicas.length > 0) await opts.onReplicas?.(answer.replicas);
    const end = await serve(hs.release(), opts);
    // Moved: the old link stays until its calls end (the hub closes it), bounded here too.
    if (end.moved && !socket.destroyed) {
      handedOff = true;
      const cut = setTimeout(() => socket.destroy(), MOVED_LINK_LINGER_MS);
      cut.unref();
      socket.once('close', () => {
        clearTimeout(cut);
        signal.removeEventListener('abort', onAbort);
      });
    }
    return end;
  } finally {
    if (!handedOff) {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
    }
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

async function serve(socket: TLSSocket, opts: ChannelOptions): Promise<LinkEnd> {
  let parting: DockfleetError | null = null;
  let moved: MoveFrame | null = null;
  let onMoved: () => void = () => {};
  const movedSignal = new Promise<void>((resolve) => (onMoved = resolve));
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
    // Once moving, this link only finishes its calls: what else the old replica says (its
    // claim superseded by our new link) must not cut them.
    if (!data || data.length === 0 || moved) return;
    const text = data.toString('utf8');
    const move = parseFrame(moveFrame, text);
    if (move) {
      // A draining replica: the calls in flight finish on this session while the channel dials
      // another replica now. Node would close the session on this GOAWAY and hang up as soon as
      // this side's answers are sent; but the replica may not have read their last bytes yet, and
      // what Node has not parsed when the peer hangs up is lost (it stops parsing input behind a
      // slow reader, and never resumes after the FIN). So the replica, the reader, hangs up
      // first, once it has read everything; MOVED_LINK_LINGER_MS bounds the wait here.
      session.close = () => {};
      socket.once('end', () => socket.destroy());
      moved = move;
      onMoved();
      return;
    }
    const frame = parseFrame(errorFrame, text);
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
  const closed = new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  const cleanUp = (): void => {
    stopHeartbeat();
    if (!session.destroyed) session.destroy();
  };
  await Promise.race([closed, movedSignal]);
  if (moved && !socket.destroyed) {
    opts.log.info({ reason: (moved as MoveFrame).reason }, 'hub replica is draining; moving to another one');
    // No heartbeat on a link being drained: once GOAWAY is exchanged its pings go unanswered, and
    // declaring it dead would cut the calls it is finishing (a drill's 1 GiB export, at ~10 s).
    // The linger bound in linkOnce and the hub's drain bound end it instead.
    stopHeartbeat();
    void closed.then(cleanUp);
    return { parting: null, moved };
  }
  cleanUp();
  return { parting, moved };
}

/** Keeps the channel up until `signal` aborts; throws only for fatal refusals. */
export async function runChannel(opts: ChannelOptions, signal: AbortSignal): Promise<void> {
  const backoff = opts.backoff ?? new Backoff({ initialMs: 100, maxMs: 10_000 });
  const replicas = opts.replicas;
  while (!signal.aborted) {
    let failure: DockfleetError | null = null;
    let connected = false;
    const hubUrl = replicas ? replicas.current() : opts.hubUrl;
    let freeSlot = (): void => {};
    try {
      if (opts.dialGate) freeSlot = await opts.dialGate(signal);
      const end = await linkOnce(
        {
          ...opts,
          hubUrl,
          onPending: () => {
            freeSlot();
            opts.onPending?.();
          },
          onConnected: () => {
            freeSlot();
            connected = true;
            backoff.reset();
            opts.onConnected?.();
          },
        },
        signal,
      );
      failure = end.parting;
      if (end.moved && replicas) {
        await replicas.learn(end.moved.replicas).catch(() => {});
        const next = replicas.moveAwayFrom(hubUrl);
        opts.log.info({ hub: next.host }, 'dialling another hub replica');
        // No backoff (the draining replica still serves its calls), only a little jitter so its
        // agents do not all land on the next replica in the same instant.
        await sleep(Math.round(Math.random() * 250), signal).catch(() => {});
        continue;
      }
    } catch (err) {
      failure = err instanceof DockfleetError ? err : new DockfleetError('hub_unreachable', (err as Error).message, { cause: err });
    } finally {
      freeSlot();
    }
    if (signal.aborted) return;
    // The replica we were on gets one redial after a drop; a failed dial moves on to the next in turn.
    if (replicas && !connected && failure && !FATAL.has(failure.code) && failure.code !== 'key_retired') {
      const next = replicas.advance();
      if (next.href !== hubUrl.href) opts.log.info({ failed: hubUrl.host, next: next.host }, 'trying another hub replica');
    }
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
