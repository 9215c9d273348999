/**
 * Fleet events: the hub follows each online node's Docker event stream (`GET /events` through
 * the agent, as any Docker client would) and merges them into one bounded ring, newest last,
 * telling listeners as each arrives. A stream that ends while its node is online is opened
 * again (from the last event's time, so nothing in between is lost; at growing intervals if
 * the agent refuses it, e.g. a host policy without event access). With hub replicas, the events
 * of agents held here are passed on to the others, and theirs arrive here (cluster/view-feed.ts).
 */
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import { DOCKER_PREFIX } from '../../protocol/docker-tunnel.ts';
import { LineTooLongError, NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { fromDockerEvent } from './docker-event.ts';
import type { FleetEvent } from '../../protocol/fleet-events.ts';
import { EventRing, type EventFilter } from './event-ring.ts';

const MAX_LINE = 256 * 1024;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export interface FleetEventsEvents {
  event: [FleetEvent];
}

export class FleetEvents extends EventEmitter<FleetEventsEvents> {
  readonly #ring: EventRing;
  readonly #log: Logger;
  #closed = false;

  constructor(registry: NodeRegistry, log: Logger, capacity?: number) {
    super();
    this.setMaxListeners(0);
    this.#ring = new EventRing(capacity);
    this.#log = log;
    registry.on('linked', (link) => this.#follow(link, 0, Math.floor(Date.now() / 1000), 0));
    // Replicas: the events of agents held elsewhere arrive over the bus; those followed here go out.
    registry.on('remoteEvents', (events) => {
      for (const e of events) if (!this.#closed) this.emit('event', this.#ring.push(e));
    });
    this.#share = (e) => registry.shareEvent(e);
  }

  readonly #share: (event: Omit<FleetEvent, 'seq'>) => void;

  query(f: EventFilter): FleetEvent[] {
    return this.#ring.query(f);
  }

  get capacity(): number {
    return this.#ring.capacity;
  }

  close(): void {
    this.#closed = true;
    this.removeAllListeners();
  }

  /** `since` (epoch seconds) makes a reopened stream replay what happened while it was down;
   * events up to `seenUpToMs` were taken already and are skipped. */
  #follow(link: AgentLink, failures: number, since: number, seenUpToMs: number): void {
    if (link.closed || this.#closed) return;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.openStream({ ':method': 'GET', ':path': `${DOCKER_PREFIX}/events?since=${since}` }, { endStream: true });
    } catch {
      return;
    }
    const splitter = new NdjsonSplitter(MAX_LINE);
    let ok = false;
    let seen = seenUpToMs;
    stream.once('response', (headers) => {
      ok = headers[':status'] === 200;
      if (!ok) {
        this.#log.warn({ node: link.nodeName, status: headers[':status'] }, 'the node refused its event stream');
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    });
    stream.on('data', (chunk: Buffer) => {
      if (!ok) return;
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (err) {
        if (!(err instanceof LineTooLongError)) throw err;
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      for (const line of lines) {
        const parsed = parseJsonLine(line);
        const event = parsed.ok ? fromDockerEvent(link.nodeName, parsed.value) : null;
        if (!event || event.time <= seenUpToMs) continue;
        seen = Math.max(seen, event.time);
        this.emit('event', this.#ring.push(event));
        this.#share(event);
      }
    });
    stream.on('error', () => {});
    // A link that closes (or is replaced while it drains, its calls in flight still running) stops
    // being followed at once: this stream never ends by itself and would keep a drain waiting.
    const stop = (): void => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    link.once('close', stop);
    link.once('draining', stop);
    stream.once('close', () => {
      link.off('close', stop);
      link.off('draining', stop);
      if (link.closed || link.draining || this.#closed) return;
      const delay = ok ? RETRY_MIN_MS : Math.min(RETRY_MIN_MS * 2 ** failures, RETRY_MAX_MS);
      const from = seen > 0 ? Math.floor(seen / 1000) : since;
      setTimeout(() => this.#follow(link, ok ? 0 : failures + 1, from, seen), delay).unref();
    });
  }
}
