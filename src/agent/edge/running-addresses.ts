/**
 * Where a running container of this engine can be reached, for the edge's dials, remembered
 * between dials so that a burst of new connections to one app costs one engine inspect instead
 * of one each. The promise the dialer keeps is that it only ever dials a running container's
 * address on its own engine; so an address is remembered only while this engine's own event
 * stream is connected, and forgotten on any event for that container (die, stop, kill, pause,
 * destroy, a network connect or disconnect, …). An inspect that overlapped any container event
 * is used once and not remembered, and when the event stream drops, everything is forgotten and
 * every dial inspects again until it is back.
 *
 * The same events tell the dialer when a container stops (die, stop, pause, destroy, a network
 * disconnect): its connections are closed at once, so a connection the edge keeps for reuse
 * never outlives its container, even when the container's end of it vanished without a word.
 */
import net from 'node:net';
import type { EngineClient } from '../engine-client.ts';
import type { Logger } from '../../lib/logger.ts';
import { NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import { labelledIngressPorts } from '../../protocol/ingress.ts';

export interface InspectAnswer {
  Id?: string;
  Config?: { Labels?: Record<string, string> | null; ExposedPorts?: Record<string, unknown> | null };
  State?: { Running?: boolean; Paused?: boolean; Restarting?: boolean };
  NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string } | null> };
}

export type Lookup =
  /** `ports`: what the container's own ingress labels publish (labelledIngressPorts); fixed for its life. */
  { ok: true; address: string; ports: readonly number[] } | { ok: false; reason: 'no_container' | 'not_running' | 'no_address' };

const EVENTS_PATH = `/events?filters=${encodeURIComponent(JSON.stringify({ type: ['container', 'network'] }))}`;
/** Bounds what is remembered (an entry is a container ID and an address). */
const MAX_REMEMBERED = 4096;
const RESUBSCRIBE_AFTER_MS = 1_000;

/** The container's addresses on this host's networks, first the default bridge's. */
export function containerAddresses(inspect: InspectAnswer): string[] {
  const found = new Set<string>();
  const primary = inspect.NetworkSettings?.IPAddress;
  if (primary && net.isIP(primary)) found.add(primary);
  for (const network of Object.values(inspect.NetworkSettings?.Networks ?? {})) {
    const ip = network?.IPAddress;
    if (ip && net.isIP(ip)) found.add(ip);
  }
  return [...found];
}

/** `Config.ExposedPorts` keys like `8080/tcp` → 8080 (udp and sctp are not for the edge). */
export function exposedTcpPorts(inspect: InspectAnswer): number[] {
  return Object.keys(inspect.Config?.ExposedPorts ?? {})
    .map((key) => /^([1-9][0-9]{0,4})\/tcp$/.exec(key)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number);
}

/** Events after which a container's open connections are dead or soon will be. */
const ENDS_CONNECTIONS = /^(die|stop|pause|destroy|oom|disconnect)$/;

/** The container an engine event is about: a container event's actor, a network event's `container` attribute. */
export function eventContainer(event: unknown): string | null {
  if (typeof event !== 'object' || event === null) return null;
  const { Type, Actor } = event as { Type?: unknown; Actor?: { ID?: unknown; Attributes?: Record<string, unknown> } };
  if (Type === 'container') return typeof Actor?.ID === 'string' ? Actor.ID : null;
  if (Type === 'network') return typeof Actor?.Attributes?.container === 'string' ? Actor.Attributes.container : null;
  return null;
}

export class RunningAddresses {
  readonly #engine: EngineClient;
  readonly #log: Logger;
  readonly #known = new Map<string, { address: string; ports: readonly number[] }>();
  /** Bumped by every container event and every (re)subscription: an inspect that saw it change is not remembered. */
  #epoch = 0;
  #live = false;
  #subscribing = false;
  #retryAt = 0;
  readonly #onGone: (containerId: string) => void;

  /** `onGone` is told the ID of a container whose connections should be closed now. */
  constructor(engine: EngineClient, log: Logger, onGone: (containerId: string) => void = () => {}) {
    this.#engine = engine;
    this.#log = log;
    this.#onGone = onGone;
  }

  /** Addresses remembered now (for tests and stats). */
  get size(): number {
    return this.#known.size;
  }

  async lookup(containerId: string): Promise<Lookup> {
    this.#subscribe();
    const known = this.#live ? this.#known.get(containerId) : undefined;
    if (known) return { ok: true, ...known };
    const epoch = this.#epoch;
    let inspect: InspectAnswer;
    try {
      inspect = await this.#engine.json<InspectAnswer>({ path: `/containers/${containerId}/json`, timeoutMs: 5_000 });
    } catch {
      return { ok: false, reason: 'no_container' };
    }
    if (inspect.State?.Running !== true || inspect.State.Paused === true || inspect.State.Restarting === true) return { ok: false, reason: 'not_running' };
    const address = containerAddresses(inspect)[0];
    if (!address) return { ok: false, reason: 'no_address' };
    const ports = labelledIngressPorts(inspect.Config?.Labels ?? {}, exposedTcpPorts(inspect));
    // Only a full ID is remembered, and only when no event came between the inspect and now.
    if (this.#live && epoch === this.#epoch && /^[a-f0-9]{64}$/.test(containerId)) {
      if (this.#known.size >= MAX_REMEMBERED) this.#known.clear();
      this.#known.set(containerId, { address, ports });
    }
    return { ok: true, address, ports };
  }

  #forgetAll(): void {
    this.#known.clear();
    this.#epoch++;
  }

  /** Follows the engine's container and network events while anyone dials (started by the first lookup). */
  #subscribe(): void {
    if (this.#live || this.#subscribing || Date.now() < this.#retryAt) return;
    this.#subscribing = true;
    void this.#follow()
      .catch((err: unknown) => this.#log.debug({ err }, 'edge: engine events for dial addresses ended'))
      .finally(() => {
        this.#live = false;
        this.#subscribing = false;
        this.#retryAt = Date.now() + RESUBSCRIBE_AFTER_MS;
        this.#forgetAll();
      });
  }

  async #follow(): Promise<void> {
    const events = await this.#engine.raw({ path: EVENTS_PATH });
    try {
      if (events.statusCode !== 200) return;
      this.#forgetAll();
      this.#live = true;
      const splitter = new NdjsonSplitter(1024 * 1024);
      for await (const chunk of events as AsyncIterable<Buffer>) {
        for (const line of splitter.push(chunk)) {
          const parsed = parseJsonLine(line);
          const id = parsed.ok ? eventContainer(parsed.value) : null;
          // An event about a container we cannot name could be about any: forget everything.
          this.#epoch++;
          if (id === null) this.#known.clear();
          else this.#known.delete(id);
          const action = parsed.ok ? (parsed.value as { Action?: unknown }).Action : null;
          if (id !== null && typeof action === 'string' && ENDS_CONNECTIONS.test(action)) this.#onGone(id);
        }
      }
    } finally {
      events.destroy();
    }
  }
}
