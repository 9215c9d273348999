/**
 * Which hub replicas are alive. Each replica announces itself ({id, peerUrl, agentUrl,
 * startedAt, draining}) in a KV bucket and re-announces every heartbeat; every replica watches
 * the bucket and keeps the live list. Liveness is judged by local receipt time, never by
 * comparing clocks: a member not heard from for `expireMs` while the bus is up drops out (the
 * bucket's max age removes its record from the server too), and a clean `leave()` deletes its
 * record, which every watcher sees at once. While the bus is down the list is kept as it was
 * but `synced` is false: nobody is declared gone on the strength of our own outage. The agent URLs of live members are what agents are handed for
 * failover.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.ts';
import type { Bus } from './bus.ts';
import { KvMirror, type MirrorEntry } from './kv-mirror.ts';
import { kvKey } from './kv-key.ts';

export const MemberSchema = z.object({
  id: z.string().min(1).max(200),
  peerUrl: z.string(),
  agentUrl: z.string(),
  startedAt: z.number(),
  draining: z.boolean(),
});
export type MemberInfo = z.infer<typeof MemberSchema>;

export interface MembersOptions {
  /** How often this replica re-announces itself (default 1000 ms). */
  heartbeatMs?: number;
  /** A member silent this long is gone (default 5000 ms; the bucket's max age is the same). */
  expireMs?: number;
}

export interface MembersEvents {
  joined: [member: MemberInfo];
  left: [id: string];
  /** The list (or a member's record, e.g. draining) changed. */
  changed: [];
}

interface Seen {
  info: MemberInfo;
  heardAt: number;
}

export class Members extends EventEmitter<MembersEvents> {
  readonly #bus: Bus;
  readonly #log: Logger;
  readonly #mirror: KvMirror;
  readonly #kv: Awaited<ReturnType<Bus['kv']>>;
  readonly #heartbeatMs: number;
  readonly #expireMs: number;
  readonly #live = new Map<string, Seen>();
  #self: MemberInfo;
  #beat: NodeJS.Timeout | null = null;
  #sweep: NodeJS.Timeout | null = null;
  #stopped = false;
  /** When a twin announcing this id was last logged. */
  #twinWarnedAt = 0;

  private constructor(bus: Bus, kv: Awaited<ReturnType<Bus['kv']>>, self: MemberInfo, log: Logger, opts: MembersOptions) {
    super();
    this.#bus = bus;
    this.#kv = kv;
    this.#self = self;
    this.#log = log;
    this.#heartbeatMs = opts.heartbeatMs ?? 1_000;
    this.#expireMs = opts.expireMs ?? 5_000;
    this.#mirror = new KvMirror(bus, kv, log, () => bus.kv('members', bucketOptions(this.#expireMs)));
    this.#mirror.on('synced', this.#onSynced);
    this.#mirror.on('change', this.#onChange);
    bus.on('up', this.#announceSoon);
    bus.on('closed', this.#halt);
  }

  /** Announces `self` and starts following the others; resolves once the first list is in. */
  static async join(bus: Bus, self: MemberInfo, log: Logger, opts: MembersOptions = {}): Promise<Members> {
    const expireMs = opts.expireMs ?? 5_000;
    const kv = await bus.kv('members', bucketOptions(expireMs));
    const members = new Members(bus, kv, MemberSchema.parse(self), log, opts);
    await members.#refuseIfInUse();
    await members.#announce();
    await members.#mirror.start();
    members.#beat = setInterval(() => void members.#announce(), members.#heartbeatMs);
    members.#sweep = setInterval(() => members.#expire(), Math.min(250, members.#heartbeatMs));
    return members;
  }

  get self(): MemberInfo {
    return this.#self;
  }

  /** Live members, this replica included, oldest first. */
  list(): MemberInfo[] {
    const others = [...this.#live.values()].map((s) => s.info).filter((m) => m.id !== this.#self.id);
    return [this.#self, ...others].sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
  }

  /** Whether the list is current (the bus is up and the copy caught up). */
  get synced(): boolean {
    return this.#mirror.synced;
  }

  isLive(id: string): boolean {
    return id === this.#self.id || this.#live.has(id);
  }

  /** Where agents may connect: every live member's agent URL, those not draining first. */
  agentUrls(): string[] {
    const members = this.list();
    return [...members.filter((m) => !m.draining), ...members.filter((m) => m.draining)].map((m) => m.agentUrl);
  }

  /** Marks this replica as draining (or not) and tells the others now. */
  async setDraining(draining: boolean): Promise<void> {
    this.#self = { ...this.#self, draining };
    await this.#announce();
  }

  /** Clean leave: stops heartbeating and deletes this replica's record so others drop it at once. */
  async leave(): Promise<void> {
    if (this.#stopped) return;
    this.#halt();
    if (this.#bus.up) {
      await this.#kv.delete(kvKey(this.#self.id)).catch((err: Error) => this.#log.warn({ err: err.message }, 'could not remove this replica from the member list'));
    }
  }

  readonly #halt = (): void => {
    this.#stopped = true;
    if (this.#beat) clearInterval(this.#beat);
    if (this.#sweep) clearInterval(this.#sweep);
    this.#beat = this.#sweep = null;
    this.#bus.off('up', this.#announceSoon);
    this.#bus.off('closed', this.#halt);
    this.#mirror.stop();
  };

  /**
   * Two running processes with one id (a copied data dir, or one --replica-id given twice) would
   * each take the other's claims for its own. A record of this id that is still being refreshed
   * is such a twin: refuse to start. One that stops changing (this id's last run, killed and
   * restarted within the expiry) is not.
   */
  async #refuseIfInUse(): Promise<void> {
    const key = kvKey(this.#self.id);
    const first = await this.#kv.get(key);
    if (first?.operation !== 'PUT') return;
    const deadline = Date.now() + 2 * this.#heartbeatMs + 250;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, this.#heartbeatMs / 2)));
      const now = await this.#kv.get(key);
      if (now?.operation !== 'PUT') return;
      if (now.revision !== first.revision) {
        const twin = parseMember({ key, value: now.value, revision: now.revision });
        throw new Error(
          `replica id ${this.#self.id} is in use by another running replica${twin ? ` (peer ${twin.peerUrl}, agents ${twin.agentUrl})` : ''}: give each replica its own --replica-id, or its own data dir`,
        );
      }
    }
  }

  /** Whether `info` is this id announced by another process (not this replica's own record, in any of its states). */
  #isTwin(info: MemberInfo): boolean {
    return info.id === this.#self.id && (info.startedAt !== this.#self.startedAt || info.peerUrl !== this.#self.peerUrl);
  }

  readonly #announceSoon = (): void => {
    void this.#announce();
  };

  async #announce(): Promise<void> {
    if (this.#stopped || !this.#bus.up) return;
    try {
      await this.#kv.put(kvKey(this.#self.id), JSON.stringify(this.#self));
    } catch (err) {
      if (!this.#stopped && this.#bus.up) this.#log.warn({ err: (err as Error).message }, 'heartbeat to the bus failed');
    }
  }

  readonly #onSynced = (): void => {
    // A fresh copy: every member in it counts as heard from now (the bucket's max age already
    // dropped the long-silent); anyone in our list but not in the copy has left.
    const now = Date.now();
    const inCopy = new Set<string>();
    for (const entry of this.#mirror.entries()) {
      const info = parseMember(entry);
      if (!info || this.#isTwin(info)) continue;
      inCopy.add(info.id);
      this.#see(info, now);
    }
    for (const id of [...this.#live.keys()]) if (!inCopy.has(id)) this.#drop(id);
  };

  readonly #onChange = (entry: MirrorEntry): void => {
    const info = parseMember(entry);
    if (info && this.#isTwin(info)) {
      // Started alongside us past the check above (both at once): say so, at most once a minute.
      if (Date.now() - this.#twinWarnedAt >= 60_000) {
        this.#twinWarnedAt = Date.now();
        this.#log.error({ replica: info.id, twinPeerUrl: info.peerUrl }, 'another running replica announces this replica id: node claims are shared with it; give each replica its own --replica-id');
      }
      return;
    }
    if (info) this.#see(info, Date.now());
    else if (entry.value === null) {
      const gone = [...this.#live.values()].find((s) => kvKey(s.info.id) === entry.key);
      if (gone) this.#drop(gone.info.id);
    }
  };

  #see(info: MemberInfo, now: number): void {
    const known = this.#live.get(info.id);
    this.#live.set(info.id, { info, heardAt: now });
    if (!known) {
      if (info.id !== this.#self.id) this.#log.info({ replica: info.id }, 'replica joined');
      this.emit('joined', info);
      this.emit('changed');
    } else if (JSON.stringify(known.info) !== JSON.stringify(info)) this.emit('changed');
  }

  #drop(id: string): void {
    if (!this.#live.delete(id)) return;
    if (id !== this.#self.id) this.#log.info({ replica: id }, 'replica left');
    this.emit('left', id);
    this.emit('changed');
  }

  /** Drops members silent past the expiry — only while the bus is up: with the bus down
   * silence says nothing about them, and the fresh copy after it comes back settles the list. */
  #expire(): void {
    if (!this.#mirror.synced) return;
    const now = Date.now();
    for (const [id, seen] of this.#live) if (now - seen.heardAt > this.#expireMs) this.#drop(id);
  }
}

/** One value per member; the server drops a record nobody refreshed for `expireMs` (a bucket-wide max age). */
function bucketOptions(expireMs: number): { history: number; ttl: number } {
  return { history: 1, ttl: expireMs };
}

function parseMember(entry: MirrorEntry): MemberInfo | null {
  if (entry.value === null) return null;
  try {
    const parsed = MemberSchema.safeParse(JSON.parse(new TextDecoder().decode(entry.value)));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
