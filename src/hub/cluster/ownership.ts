/**
 * Who holds each agent's link, with an epoch, and fencing. A replica that an agent connects to
 * `claim`s the node: it writes {replica, at, claim} to the node's key in a KV bucket with
 * compare-and-set on the revision its copy last saw, so of two claims racing (neither having
 * seen the other) exactly one lands, and a claim made after another was seen supersedes it
 * (the newest link wins; a loser's agent reconnects and its next claim is the newest). The KV revision of
 * the write is the epoch. Every replica follows the bucket through a watch (`owner()` answers
 * from that copy, no round trip); a holder whose claim is superseded hears `lost(node, epoch)`
 * and must close that link, and `holds(node, epoch)` — checked before answering a forwarded
 * request — is false from then on.
 *
 * Honest when degraded: while the bus is down (or the copy is being rebuilt) `owner()` answers
 * `unknown`, never a stale owner, and `holds()` is false. A claim whose replica is no longer a
 * live member counts as nobody's (`offline`), and a sweep deletes such claims (CAS, so racing
 * sweepers and a returning owner cannot clobber each other). When the bus comes back this
 * replica re-asserts its claims against what is there: still its own → kept; deleted meanwhile
 * → claimed again (`renewed` with the new epoch); someone else's newer claim → `lost`.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import type { Logger } from '../../lib/logger.ts';
import type { Bus } from './bus.ts';
import { idFromKvKey, kvKey } from './kv-key.ts';
import { KvMirror, type MirrorEntry } from './kv-mirror.ts';

/** One value per node, no expiry: a claim lasts until superseded, released or swept. */
const BUCKET = { history: 1 };
const ClaimSchema = z.object({ replica: z.string().min(1), at: z.number(), claim: z.string() });
type ClaimRecord = z.infer<typeof ClaimSchema>;

/** What ownership needs from membership: who is alive, and whether that list is current. */
export interface Liveness {
  readonly self: { id: string };
  readonly synced: boolean;
  isLive(id: string): boolean;
}

export type OwnerAnswer =
  | { state: 'held'; replica: string; epoch: number }
  /** Nobody holds it: never claimed, released, or its holder is not a live replica. */
  | { state: 'offline'; reason: 'unclaimed' | 'owner_gone' }
  /** The bus is down (or just back and not caught up): ownership cannot be trusted now. */
  | { state: 'unknown'; reason: 'bus_down' };

export type ClaimResult =
  | { won: true; epoch: number }
  /** Another claim landed first (`holder` is it, when known), or the bus is down. */
  | { won: false; reason: 'superseded' | 'bus_down'; holder: { replica: string; epoch: number } | null };

export interface OwnershipEvents {
  /** This replica's claim on `node` at `epoch` is no longer current: close that link. */
  lost: [node: string, epoch: number];
  /** This replica re-claimed `node` after the bus came back (its claim was gone): new epoch. */
  renewed: [node: string, from: number, to: number];
  /** The copy changed: what `owner()` answers may differ now, for `node` (its claim changed) or, when null, for any (a fresh copy). */
  changed: [node: string | null];
}

export interface OwnershipOptions {
  /** How often claims of replicas that are not live members are deleted (default 1000 ms). */
  sweepMs?: number;
  /** After the bus comes back, how long to wait before sweeping (default 5000 ms: the others re-announce first). */
  sweepGraceMs?: number;
}

export class Ownership extends EventEmitter<OwnershipEvents> {
  readonly #bus: Bus;
  readonly #kv: KV;
  readonly #members: Liveness;
  readonly #log: Logger;
  readonly #mirror: KvMirror;
  /** node → epoch of this replica's current claims. */
  readonly #held = new Map<string, number>();
  /** node → epoch released while the bus was down: deleted (CAS) once it is back. */
  readonly #unreleased = new Map<string, number>();
  readonly #sweepGraceMs: number;
  #syncedAt = 0;
  #sweeping = false;
  #sweep: NodeJS.Timeout;

  private constructor(bus: Bus, kv: KV, members: Liveness, log: Logger, opts: OwnershipOptions) {
    super();
    this.#bus = bus;
    this.#kv = kv;
    this.#members = members;
    this.#log = log;
    this.#sweepGraceMs = opts.sweepGraceMs ?? 5_000;
    this.#mirror = new KvMirror(bus, kv, log, () => bus.kv('owners', BUCKET));
    this.#mirror.on('synced', this.#onSynced);
    this.#mirror.on('change', this.#onChange);
    this.#sweep = setInterval(() => void this.#sweepGone(), opts.sweepMs ?? 1_000);
    bus.once('closed', () => clearInterval(this.#sweep));
  }

  static async open(bus: Bus, members: Liveness, log: Logger, opts: OwnershipOptions = {}): Promise<Ownership> {
    const kv = await bus.kv('owners', BUCKET);
    const ownership = new Ownership(bus, kv, members, log, opts);
    await ownership.#mirror.start();
    return ownership;
  }

  get #self(): string {
    return this.#members.self.id;
  }

  /** Who holds `node` now, from the local copy; `unknown` while that copy cannot be trusted. */
  owner(node: string): OwnerAnswer {
    if (!this.#mirror.synced || !this.#members.synced) return { state: 'unknown', reason: 'bus_down' };
    const entry = this.#mirror.get(kvKey(node));
    const mine = this.#held.get(node);
    if (mine !== undefined && (!entry || entry.revision <= mine)) return { state: 'held', replica: this.#self, epoch: mine };
    const record = entry ? parseClaim(entry) : null;
    if (!entry || !record) return { state: 'offline', reason: 'unclaimed' };
    if (!this.#members.isLive(record.replica)) return { state: 'offline', reason: 'owner_gone' };
    return { state: 'held', replica: record.replica, epoch: entry.revision };
  }

  /** Fencing: may this replica answer for `node` at `epoch`? Only its current claim, only while the bus is up. */
  holds(node: string, epoch: number): boolean {
    return this.#mirror.synced && this.#held.get(node) === epoch;
  }

  /** This replica's own epoch for `node`, whatever the bus's state (for its local link). */
  localEpoch(node: string): number | undefined {
    return this.#held.get(node);
  }

  /** This replica's current claims (node → epoch): what a drain hands over. */
  heldNodes(): Map<string, number> {
    return new Map(this.#held);
  }

  /** Claims `node` for this replica: compare-and-set on the revision read, so racing claims land one at a time. */
  async claim(node: string): Promise<ClaimResult> {
    const result = await this.#write(node);
    if (result.won) this.#adopt(node, result.epoch);
    return result;
  }

  /** Gives up `node` if this replica still holds it at `epoch` (CAS delete); false for anyone else. */
  async release(node: string, epoch: number): Promise<boolean> {
    if (this.#held.get(node) !== epoch) return false;
    this.#held.delete(node);
    if (!this.#bus.up) {
      this.#unreleased.set(node, epoch);
      return true;
    }
    try {
      await this.#kv.delete(kvKey(node), { previousSeq: epoch });
    } catch (err) {
      if (!this.#bus.up) this.#unreleased.set(node, epoch);
      else this.#log.debug({ node, err: (err as Error).message }, 'release found a newer claim; left it');
    }
    return true;
  }

  /** Stops following the bus. Claims stay in the bucket (a drain releases them first). */
  close(): void {
    clearInterval(this.#sweep);
    this.#mirror.stop();
  }

  /** Writes a claim on the revision last seen (create when the key never existed). */
  async #write(node: string): Promise<ClaimResult> {
    if (!this.#bus.up) return { won: false, reason: 'bus_down', holder: null };
    const key = kvKey(node);
    const record: ClaimRecord = { replica: this.#self, at: Date.now(), claim: randomUUID() };
    try {
      // The revision this replica last saw is the one the write must land on: two replicas
      // claiming before either saw the other's claim both aim at it, and only one lands.
      const current = this.#mirror.synced ? this.#mirror.get(key) : await this.#kv.get(key);
      const value = JSON.stringify(record);
      const epoch = current ? await this.#kv.update(key, value, current.revision) : await this.#kv.create(key, value);
      return { won: true, epoch };
    } catch (err) {
      if (!this.#bus.up) return { won: false, reason: 'bus_down', holder: null };
      // Refused (another claim landed after our read), or an answer lost after the write: look.
      const now = await this.#kv.get(key).catch(() => null);
      const there = now ? parseClaim(toEntry(now)) : null;
      if (now && there?.claim === record.claim) return { won: true, epoch: now.revision };
      this.#log.debug({ node, err: (err as Error).message }, 'claim superseded by a concurrent one');
      return { won: false, reason: 'superseded', holder: there && now ? { replica: there.replica, epoch: now.revision } : null };
    }
  }

  /** Records a claim just won; an older claim of ours on the node is thereby superseded. */
  #adopt(node: string, epoch: number): void {
    const before = this.#held.get(node);
    const latest = this.#mirror.get(kvKey(node));
    if (latest && latest.revision > epoch && parseClaim(latest)?.replica !== this.#self) {
      // Someone else's claim already landed after ours (seen by the watch before we got here).
      this.emit('lost', node, epoch);
      return;
    }
    if (before !== undefined && before >= epoch) return;
    this.#held.set(node, epoch);
    if (before !== undefined) this.emit('lost', node, before);
  }

  readonly #onChange = (entry: MirrorEntry): void => {
    const node = idFromKvKey(entry.key);
    this.emit('changed', node);
    const mine = this.#held.get(node);
    if (mine === undefined || entry.revision <= mine) return;
    const record = parseClaim(entry);
    if (record?.replica === this.#self) return; // our own newer claim, adopted when claim() returns
    if (record) {
      this.#held.delete(node);
      this.emit('lost', node, mine);
    } else void this.#reassert(node, mine); // deleted by a sweep that thought us gone: we still hold the link
  };

  readonly #onSynced = (): void => {
    this.emit('changed', null);
    this.#syncedAt = Date.now();
    for (const [node, epoch] of [...this.#unreleased]) {
      this.#unreleased.delete(node);
      void this.#kv.delete(kvKey(node), { previousSeq: epoch }).catch(() => {});
    }
    for (const [node, epoch] of [...this.#held]) {
      const entry = this.#mirror.get(kvKey(node));
      const record = entry ? parseClaim(entry) : null;
      if (entry && entry.revision === epoch) continue;
      if (entry && record && entry.revision > epoch && record.replica !== this.#self) {
        this.#held.delete(node);
        this.emit('lost', node, epoch);
      } else if (!record) void this.#reassert(node, epoch);
    }
  };

  /** Claims `node` again after our claim at `epoch` was deleted, unless someone else claims it first. */
  async #reassert(node: string, epoch: number): Promise<void> {
    const result = await this.#write(node);
    if (this.#held.get(node) !== epoch) return; // released, lost or renewed meanwhile
    if (result.won) {
      this.#held.set(node, result.epoch);
      this.#log.info({ node, from: epoch, to: result.epoch }, 'claim re-asserted');
      this.emit('renewed', node, epoch, result.epoch);
    } else if (result.reason === 'superseded') {
      this.#held.delete(node);
      this.emit('lost', node, epoch);
    }
  }

  async #sweepGone(): Promise<void> {
    if (this.#sweeping || !this.#mirror.synced || !this.#members.synced || Date.now() - this.#syncedAt < this.#sweepGraceMs) return;
    this.#sweeping = true;
    try {
      for (const entry of [...this.#mirror.entries()]) {
        const record = parseClaim(entry);
        if (!record || this.#members.isLive(record.replica)) continue;
        if (!this.#bus.up) return;
        await this.#kv.delete(entry.key, { previousSeq: entry.revision }).catch(() => {});
      }
    } finally {
      this.#sweeping = false;
    }
  }
}

function toEntry(e: { key: string; value: Uint8Array; revision: number; operation: string }): MirrorEntry {
  return { key: e.key, value: e.operation === 'PUT' ? e.value : null, revision: e.revision };
}

/** Claims parsed once per entry: `owner()` runs for every node on every listing of them. */
const parsedClaims = new WeakMap<MirrorEntry, ClaimRecord | null>();

function parseClaim(entry: MirrorEntry): ClaimRecord | null {
  const known = parsedClaims.get(entry);
  if (known !== undefined) return known;
  let record: ClaimRecord | null = null;
  if (entry.value !== null) {
    try {
      const parsed = ClaimSchema.safeParse(JSON.parse(new TextDecoder().decode(entry.value)));
      if (parsed.success) record = parsed.data;
    } catch {
      // not a claim: null
    }
  }
  parsedClaims.set(entry, record);
  return record;
}
