/**
 * Work that must run on one replica at a time (issue 17): each agent upgrade rollout, and the
 * background loops that would misbehave if every replica ran them. `follow(name, drive)` calls
 * `drive` while this replica holds the lease `name`, with a signal that aborts when the lease is
 * lost; when `drive` resolves the lease is let go and following ends.
 *
 * On PostgreSQL the lease is a session advisory lock (`pg_try_advisory_lock`) held by one
 * connection of this replica's own, apart from the pool: a replica that dies or loses that
 * connection loses its leases with it (the server ends the session), and a follower that asks
 * every `retryMs` takes them over. The connection is checked every `retryMs` too: a failed or
 * slow check counts as lost (the session is ended, so the server lets the locks go), every drive
 * here is told to stop, and the replica asks again once it reconnects. A lease let go (its drive
 * stopped, or the replica closing) is unlocked only once the drive has ended, so that what it
 * was doing (a message half sent) is never done again by the next holder at the same time; a
 * drive that ignores its signal for `letGoWaitMs` is let go anyway. On a single hub (without
 * --bus, on either store) every lease is held at once (`LocalLeases`).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../lib/logger.ts';

export type Drive = (held: AbortSignal) => Promise<void> | void;

export interface Leases {
  /** Drives `name` here whenever this replica holds its lease, until `drive` resolves or `stop()`. */
  follow(name: string, drive: Drive): { stop(): void };
  close(): Promise<void>;
}

/** A single hub: nobody else could hold a lease. */
export class LocalLeases implements Leases {
  readonly #held = new Set<AbortController>();

  follow(_name: string, drive: Drive): { stop(): void } {
    const held = new AbortController();
    this.#held.add(held);
    void Promise.resolve()
      .then(() => drive(held.signal))
      .catch(() => {})
      .finally(() => this.#held.delete(held));
    return { stop: () => held.abort() };
  }

  async close(): Promise<void> {
    for (const held of this.#held) held.abort();
    this.#held.clear();
  }
}

/** The advisory lock key of a lease name: 64 bits of its SHA-256, under a prefix of ours. */
export function leaseKey(name: string): string {
  return createHash('sha256').update(`dockfleet-lease:${name}`).digest().readBigInt64BE(0).toString();
}

interface Followed {
  name: string;
  key: string;
  drive: Drive;
  /** Set while this replica holds the lease and drives. */
  held: AbortController | null;
  /** The drive running now: settles when it has ended. */
  driving: Promise<void> | null;
  stopped: boolean;
}

export interface PgLeaseOptions {
  /** How often a follower asks for a lease and the connection is checked (default 2000 ms). */
  retryMs?: number;
  /** How long a check or a lock call may take before the connection counts as lost (default 5000 ms). */
  timeoutMs?: number;
  /** How long letting a lease go waits for its drive to end before it unlocks anyway (default 15000 ms). */
  letGoWaitMs?: number;
}

export class PgLeases implements Leases {
  readonly #url: string;
  readonly #log: Logger;
  readonly #retryMs: number;
  readonly #timeoutMs: number;
  readonly #letGoWaitMs: number;
  readonly #followed = new Set<Followed>();
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #ticking = false;
  /** A follow came while a tick ran: tick again at once after it. */
  #again = false;
  #closed = false;
  /** Leases being let go: their drives are ending, then they are unlocked. */
  readonly #lettingGo = new Set<Promise<void>>();

  constructor(url: string, log: Logger, opts: PgLeaseOptions = {}) {
    this.#url = url;
    this.#log = log.child({ part: 'leases' });
    this.#retryMs = opts.retryMs ?? 2_000;
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
    this.#letGoWaitMs = opts.letGoWaitMs ?? 15_000;
  }

  follow(name: string, drive: Drive): { stop(): void } {
    const f: Followed = { name, key: leaseKey(name), drive, held: null, driving: null, stopped: false };
    this.#followed.add(f);
    this.#start();
    void this.#tick();
    return {
      stop: () => {
        f.stopped = true;
        this.#track(this.#letGo(f));
      },
    };
  }

  /** Whether this replica holds `name` now. */
  holds(name: string): boolean {
    return [...this.#followed].some((f) => f.name === name && f.held !== null);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const driving: Promise<void>[] = [];
    for (const f of this.#followed) {
      f.stopped = true;
      f.held?.abort();
      if (f.driving) driving.push(f.driving);
    }
    this.#followed.clear();
    await this.#ended(driving, 'closing');
    await Promise.all(this.#lettingGo); // each waits for its drive (bounded) before it unlocks
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {}); // the session's end lets every lock go
  }

  #start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => void this.#tick(), this.#retryMs);
    this.#timer.unref();
  }

  async #connect(): Promise<pg.Client> {
    if (this.#client) return this.#client;
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: this.#timeoutMs, query_timeout: this.#timeoutMs, keepAlive: true });
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    await client.connect();
    if (this.#closed) {
      await client.end().catch(() => {});
      throw new Error('closed');
    }
    this.#client = client;
    return client;
  }

  /** The lease connection is gone: every lease held through it is lost. */
  #lost(client: pg.Client, err: Error): void {
    if (this.#client !== client) return;
    this.#client = null;
    void client.end().catch(() => {});
    for (const f of this.#followed) {
      if (!f.held) continue;
      this.#log.warn({ lease: f.name, err: err.message }, 'lease lost with its database connection; another replica may take it over');
      f.held.abort();
      f.held = null;
    }
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#ticking = true;
    this.#again = false;
    let client: pg.Client | null = null;
    try {
      client = await this.#connect();
      if ([...this.#followed].some((f) => f.held)) await client.query('SELECT 1');
      for (const f of [...this.#followed]) {
        if (f.held || f.stopped) continue;
        const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS got', [f.key]);
        if (!rows[0]?.got) continue;
        if (f.stopped || this.#closed) {
          await client.query('SELECT pg_advisory_unlock($1::bigint)', [f.key]);
          continue;
        }
        this.#drive(f);
      }
    } catch (err) {
      if (client) this.#lost(client, err as Error);
      else if (!this.#closed) this.#log.debug({ err: (err as Error).message }, 'cannot reach the database for leases; asking again later');
    } finally {
      this.#ticking = false;
    }
    if (this.#again) void this.#tick();
  }

  #drive(f: Followed): void {
    const held = new AbortController();
    f.held = held;
    this.#log.info({ lease: f.name }, 'lease taken: driving it here');
    const driving = Promise.resolve()
      .then(() => f.drive(held.signal))
      .catch((err: unknown) => this.#log.error({ lease: f.name, err }, 'leased work failed'));
    f.driving = driving;
    void driving.finally(() => {
      if (f.driving === driving) f.driving = null;
      if (held.signal.aborted) return; // lost: asked for again while followed
      f.stopped = true;
      this.#track(this.#letGo(f));
    });
  }

  /** Waits for drives told to stop to end, for `letGoWaitMs` at most. */
  async #ended(driving: Promise<void>[], why: string): Promise<void> {
    if (driving.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#letGoWaitMs);
    });
    const outcome = await Promise.race([Promise.all(driving).then(() => 'ended' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') this.#log.warn({ why, waitedMs: this.#letGoWaitMs }, 'a leased drive did not end when told to; letting its lease go anyway');
  }

  #track(lettingGo: Promise<void>): void {
    this.#lettingGo.add(lettingGo);
    void lettingGo.finally(() => this.#lettingGo.delete(lettingGo));
  }

  async #letGo(f: Followed): Promise<void> {
    this.#followed.delete(f);
    const held = f.held;
    f.held = null;
    if (!held) return;
    held.abort();
    if (f.driving) await this.#ended([f.driving], f.name);
    try {
      await this.#client?.query('SELECT pg_advisory_unlock($1::bigint)', [f.key]);
    } catch {
      // The connection is gone: so is the lock.
    }
  }
}
