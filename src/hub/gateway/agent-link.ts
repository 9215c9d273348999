/**
 * One connected agent as the hub sees it: an HTTP/2 client session on the agent's upgraded TLS
 * socket (native: Node's HTTP/2 reads and writes the socket without a JavaScript hop).
 * Every hub→agent call is a stream on it; the agent's inventory arrives on one long-lived
 * stream the link keeps open for as long as the agent is connected.
 */
import { EventEmitter } from 'node:events';
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { DockfleetError } from '../../protocol/errors.ts';
import type { ErrorFrame, MoveFrame } from '../../protocol/handshake.ts';
import { HOST_USAGE_QUERY, INVENTORY_PATH, MAX_INVENTORY_LINE, inventoryMessage, type InventoryMessage } from '../../protocol/inventory.ts';
import { H2_MAX_SESSION_MEMORY_MB, H2_SETTINGS, WindowSizer, widenSessionWindow } from '../../lib/h2-channel.ts';
import { LinkQos } from './link-qos.ts';
import { requestJsonOver, requestOver, type OpenStream } from './link-requests.ts';
import { NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';

export interface AgentLinkEvents {
  inventory: [InventoryMessage];
  /** A ping's round trip on this link, in ms (measured on the agent's heartbeats; metrics). */
  roundTrip: [ms: number];
  close: [];
  /** Told to move (drain): streams that follow the agent for as long as it is here (events, stats) end now. */
  draining: [];
}

export interface AgentResponse {
  status: number;
  headers: IncomingHttpHeaders;
  stream: ClientHttp2Stream;
}

export interface LinkRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
}

const INVENTORY_RETRY_MS = 1_000;
/** How long a closing link waits for the agent to hang up after GOAWAY before cutting it off. */
const CLOSE_GRACE_MS = 1_000;
/** How often the hub measures the link's round trip again (riding on the agent's heartbeat). */
const RTT_PROBE_EVERY_MS = 60_000;
const RTT_EARLY_PROBES = 5;

export class AgentLink extends EventEmitter<AgentLinkEvents> {
  readonly nodeId: string;
  readonly nodeName: string;
  keyId: string;
  readonly connectedAt = Date.now();
  /** The version the agent said it runs (its handshake), shown per node and awaited by upgrades. */
  readonly agentVersion: string;
  lastSeen = Date.now();
  readonly #socket: TLSSocket;
  readonly #session: ClientHttp2Session;
  /** Interactive calls first: bulk answers on this link yield to them (link-qos.ts). */
  readonly qos = new LinkQos();
  readonly #log: Logger;
  #closed = false;
  #draining = false;
  #inventoryStream: ClientHttp2Stream | null = null;
  /** Calls open on the link (Node does not list a session's streams): a drain ends with the last. */
  readonly #inFlight = new Set<ClientHttp2Stream>();

  constructor(opts: { socket: TLSSocket; nodeId: string; nodeName: string; keyId: string; log: Logger; agentVersion?: string }) {
    super();
    this.agentVersion = opts.agentVersion ?? 'dev';
    this.nodeId = opts.nodeId;
    this.nodeName = opts.nodeName;
    this.keyId = opts.keyId;
    this.#socket = opts.socket;
    this.#log = opts.log;
    this.#session = http2.connect('http://agent.dockfleet.invalid', {
      createConnection: () => opts.socket,
      settings: H2_SETTINGS,
      maxSessionMemory: H2_MAX_SESSION_MEMORY_MB,
    });
    widenSessionWindow(this.#session);
    this.#session.on('error', (err) => this.#log.debug({ err, node: this.nodeName }, 'agent session error'));
    this.#session.once('close', () => this.#onClosed());
    opts.socket.once('close', () => this.#onClosed());
    // HTTP/2 reads the socket natively; what still reaches JavaScript is its end. The hub's
    // server allows half-open sockets, so an agent's hang-up must close this side here.
    opts.socket.once('end', () => this.#onClosed());
    opts.socket.resume();
    // Downloads (logs, export, docker cp out, save) flow into the hub's windows: size them to the
    // link's round trip, measured once the session is up and again now and then. The first
    // probes run while the agent is still busy connecting (inventory, JIT), so the next few
    // heartbeats each bring another.
    const windows = new WindowSizer(this.#session, (window, rttMs) => this.#log.debug({ node: this.nodeName, rttMs, window }, 'stream windows sized to the link'));
    let probedAt = 0;
    let probes = 0;
    const probe = (): void => {
      probedAt = Date.now();
      probes++;
      windows.probe((ms) => this.emit('roundTrip', ms));
    };
    if (this.#session.connecting) this.#session.once('connect', probe);
    else probe();
    // The agent pings every HEARTBEAT_MS; each ping it sends is a sign of life here, and the
    // registry's sweep drops links that stay silent (no per-link timer on the hub).
    this.#session.on('ping', () => {
      this.lastSeen = Date.now();
      if (probes < RTT_EARLY_PROBES || this.lastSeen - probedAt >= RTT_PROBE_EVERY_MS) probe();
    });
    this.#followInventory();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Told to move to another replica (its calls in flight may still be running). */
  get draining(): boolean {
    return this.#draining;
  }

  /** Bytes this link's socket carried each way so far (still readable once it closed; metrics). */
  get bytes(): { toAgent: number; fromAgent: number } {
    return { toAgent: this.#socket.bytesWritten, fromAgent: this.#socket.bytesRead };
  }

  /** Sends a request through the agent; resolves with the response head and its body stream. */
  request(req: LinkRequest): Promise<AgentResponse> {
    if (this.#closed) return Promise.reject(new DockfleetError('node_offline', `node ${this.nodeName} is offline`));
    return requestOver(this.#open, this.nodeName, req);
  }

  readonly #open: OpenStream = (headers, opts) => this.#newStream(headers, opts);

  /** Opens a raw stream to the agent (the Docker gateway pipes bytes through it). */
  openStream(headers: Record<string, string | string[]>, opts: { endStream: boolean }): ClientHttp2Stream {
    return this.#newStream(headers, opts);
  }

  #newStream(headers: Record<string, string | string[]>, opts: { endStream: boolean; signal?: AbortSignal }): ClientHttp2Stream {
    if (this.#closed) throw new DockfleetError('node_offline', `node ${this.nodeName} is offline`);
    if (this.#draining) throw new DockfleetError('node_offline', `node ${this.nodeName} is moving to another hub replica; retry`);
    try {
      const stream = this.#session.request(headers, opts);
      this.#inFlight.add(stream);
      stream.once('close', () => {
        this.#inFlight.delete(stream);
        if (this.#draining) this.#endDrainWhenIdle();
      });
      return stream;
    } catch (err) {
      // The session is closing (GOAWAY sent or received) a moment before the link says so.
      throw new DockfleetError('node_offline', `node ${this.nodeName} is going away: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A request whose answer is JSON, read whole (bounded). */
  async requestJson(req: LinkRequest & { maxBytes?: number }): Promise<{ status: number; body: unknown }> {
    const endInteractive = this.qos.begin();
    try {
      if (this.#closed) throw new DockfleetError('node_offline', `node ${this.nodeName} is offline`);
      return await requestJsonOver(this.#open, this.nodeName, req);
    } finally {
      endInteractive();
    }
  }

  /** Closes the link, first telling the agent why (in the GOAWAY's debug data) when a reason is given. */
  close(reason?: ErrorFrame): void {
    if (this.#closed) return;
    if (this.#draining) {
      // Already told to move (drain): the registry forgets it now, so new calls go to the new
      // holder, while the calls in flight end within the drain's bound.
      this.#closed = true;
      this.emit('close');
      return;
    }
    if (reason && !this.#session.destroyed) {
      const code = reason.code === 'protocol_error' ? http2.constants.NGHTTP2_PROTOCOL_ERROR : http2.constants.NGHTTP2_NO_ERROR;
      this.#session.goaway(code, 0, Buffer.from(JSON.stringify(reason)));
      // The agent hangs up when it reads the reason; one that does not is cut off.
      setTimeout(() => this.#teardown(), CLOSE_GRACE_MS).unref();
      this.#closed = true;
      this.emit('close');
      return;
    }
    this.#onClosed();
  }

  /**
   * Hands the agent over (issue 17, cluster/drain.ts): tells it to move (GOAWAY NO_ERROR with the
   * replicas to dial), takes no new calls, and lets the calls in flight end. Resolves when the
   * link is closed; past `timeoutMs` the calls still open are cut.
   */
  drain(move: MoveFrame, timeoutMs: number): Promise<void> {
    if (this.#closed || this.#session.destroyed) return Promise.resolve();
    // The session's own end, not the link's 'close': a superseded claim closes the link early.
    const ended = new Promise<void>((resolve) => this.#session.once('close', () => resolve()));
    this.#draining = true;
    if (!this.#session.destroyed) {
      this.#session.goaway(http2.constants.NGHTTP2_NO_ERROR, 0, Buffer.from(JSON.stringify(move)));
      // The inventory stream never ends by itself: the agent's new replica follows it now.
      this.#inventoryStream?.close(http2.constants.NGHTTP2_CANCEL);
      // Graceful: no new streams; the session ends when its last stream does.
      this.#session.close();
    }
    this.emit('draining');
    this.#endDrainWhenIdle();
    const cut = setTimeout(() => this.#onClosed(), timeoutMs);
    return ended.finally(() => clearTimeout(cut));
  }

  /**
   * A drained link hangs up from this side, once every call on it has been read to its end: the
   * agent waits for that (hub-channel.ts), since what Node has not parsed yet when the sender
   * hangs up is lost. Node's own graceful close would wait for the agent to hang up instead.
   */
  #endDrainWhenIdle(): void {
    if (this.#inFlight.size > 0) return;
    setImmediate(() => {
      if (this.#inFlight.size === 0) this.#teardown();
    });
  }

  #onClosed(): void {
    this.qos.close();
    if (this.#closed) return this.#teardown();
    this.#closed = true;
    this.#teardown();
    this.emit('close');
  }

  #teardown(): void {
    if (!this.#session.destroyed) this.#session.destroy();
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  #followInventory(): void {
    // A session can be destroyed (or closing) a while before it says 'close', when its socket
    // still has to finish: asking it for a stream then throws, and from a timer that would end
    // the hub. The link is going; its 'close' does the rest.
    if (this.#closed || this.#draining || this.#session.destroyed || this.#session.closed) return;
    let stream: ClientHttp2Stream;
    try {
      // Host-usage reports too (an agent that predates them ignores the query).
      stream = this.#session.request({ ':method': 'GET', ':path': `${INVENTORY_PATH}?${HOST_USAGE_QUERY}` });
    } catch (err) {
      this.#log.debug({ node: this.nodeName, err }, 'inventory stream not opened: the link is going');
      return;
    }
    this.#inventoryStream = stream;
    const splitter = new NdjsonSplitter(MAX_INVENTORY_LINE);
    stream.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (err) {
        this.#log.warn({ node: this.nodeName, err }, 'inventory line too long; dropping link');
        this.close({ t: 'error', code: 'protocol_error', message: 'inventory line too long' });
        return;
      }
      for (const line of lines) this.#acceptInventoryLine(line);
    });
    stream.on('error', () => {});
    stream.once('close', () => {
      if (!this.#closed) setTimeout(() => this.#followInventory(), INVENTORY_RETRY_MS).unref();
    });
    stream.end();
  }

  #acceptInventoryLine(line: string): void {
    // A link that was replaced or closed may still deliver what was in flight: it is older
    // than what the node's new link sends, so it must not overwrite it.
    if (this.#closed) return;
    const parsed = parseJsonLine(line);
    const message = parsed.ok ? inventoryMessage.safeParse(parsed.value) : null;
    if (!message?.success) {
      this.#log.warn({ node: this.nodeName }, 'ignored a malformed inventory message');
      return;
    }
    this.lastSeen = Date.now();
    try {
      this.emit('inventory', message.data);
    } catch (err) {
      // Whatever an agent sends, it must not take the hub down with it.
      this.#log.error({ err, node: this.nodeName }, 'inventory update failed');
    }
  }
}
