/**
 * The bus between hub replicas: one NATS connection per replica, reconnecting forever with
 * backoff. It says whether it is up now (and emits `up`/`down` on change) so that whatever
 * trusts the bus — ownership, membership — can stop trusting it the moment it drops. Core
 * subjects live under `dockfleet.<cluster>.`; JetStream KV buckets are named
 * `dockfleet_<cluster>_<name>` (bucket names allow no dots). nats-server 2.9 has no per-key TTL,
 * so buckets here use a bucket-wide max age at most.
 */
import { EventEmitter } from 'node:events';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type KV, type KvOptions, Kvm } from '@nats-io/kv';
import { Backoff } from '../../lib/backoff.ts';
import type { Logger } from '../../lib/logger.ts';

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface BusOptions {
  /** nats:// URLs (credentials in a URL are never logged). */
  servers: string[];
  /** Names this cluster's subjects and buckets, so clusters can share a NATS server. */
  cluster: string;
  /** Shown in NATS's connection list (the replica id). */
  name: string;
  log: Logger;
  /** Pings every this many ms; a silent server counts as gone after two missed (default 2000). */
  pingIntervalMs?: number;
}

export interface BusEvents {
  /** Connected (first time or again): what the bus says can be trusted again. */
  up: [];
  /** Connection lost: until `up`, nothing the bus said may be taken as current. */
  down: [];
  /** Closed for good (close() or a fatal error); no `up` follows. */
  closed: [];
}

export class Bus extends EventEmitter<BusEvents> {
  readonly nc: NatsConnection;
  readonly cluster: string;
  readonly #log: Logger;
  #up = true;
  #closed = false;

  private constructor(nc: NatsConnection, cluster: string, log: Logger) {
    super();
    this.nc = nc;
    this.cluster = cluster;
    this.#log = log;
    void this.#follow();
    void nc.closed().then((err) => {
      this.#closed = true;
      if (err) this.#log.warn({ err: err.message }, 'bus connection closed with an error');
      this.#setUp(false);
      this.emit('closed');
    });
  }

  /** Connects (waiting, retrying, until the server answers) and keeps reconnecting forever after. */
  static async connect(opts: BusOptions): Promise<Bus> {
    if (!CLUSTER_NAME.test(opts.cluster)) throw new Error(`cluster name ${JSON.stringify(opts.cluster)} must be 1-64 of A-Z a-z 0-9 _ -`);
    // Jittered backoff from 250 ms to 2 s: replicas spread out, and a bus that is back is used soon.
    const backoff = new Backoff({ initialMs: 250, maxMs: 2_000 });
    const nc = await connect({
      servers: opts.servers,
      name: opts.name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectDelayHandler: () => backoff.next(),
      pingInterval: opts.pingIntervalMs ?? 2_000,
      maxPingOut: 2,
      timeout: 5_000,
    });
    opts.log.info({ servers: opts.servers.map(redactNatsUrl), cluster: opts.cluster }, 'bus connected');
    const bus = new Bus(nc, opts.cluster, opts.log);
    bus.on('up', () => backoff.reset());
    return bus;
  }

  /** Whether the connection is up right now. */
  get up(): boolean {
    return this.#up && !this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `dockfleet.<cluster>.<name>`: every core subject this cluster uses. */
  subject(name: string): string {
    return `dockfleet.${this.cluster}.${name}`;
  }

  /** `dockfleet_<cluster>_<name>`: every KV bucket this cluster uses. */
  bucketName(name: string): string {
    return `dockfleet_${this.cluster}_${name}`;
  }

  /** Opens (creating if needed) this cluster's KV bucket `name`. */
  kv(name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
    return new Kvm(this.nc).create(this.bucketName(name), opts);
  }

  /** Closes the connection (flushing what was published). */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.nc.close();
  }

  async #follow(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.#log.warn('bus down: lost the NATS connection');
        this.#setUp(false);
      } else if (s.type === 'reconnect') {
        this.#log.info('bus up again');
        this.#setUp(true);
      }
    }
  }

  #setUp(up: boolean): void {
    if (this.#up === up || (up && this.#closed)) return;
    this.#up = up;
    this.emit(up ? 'up' : 'down');
  }
}

/** A NATS URL fit for logs: any user or password in it replaced. */
export function redactNatsUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1[redacted]@');
}
