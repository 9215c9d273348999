/**
 * A local, watch-fed copy of one KV bucket that is honest about being current. It is `synced`
 * only while the bus is up and the watch has delivered every key's latest value; the moment the
 * bus drops it says so (`unsynced`) and keeps nothing it would pretend is fresh. When the bus
 * is back it starts a new watch, builds a fresh copy, and swaps it in whole (`synced`), so a
 * key deleted or changed during the outage is seen as such. Live changes after that arrive one
 * by one (`change`), in revision order. A watch has caught up once it delivered the bucket's
 * last sequence (or nothing is pending, or the bucket is empty): keys that expire while it runs
 * (members' records during a bus outage) leave the pending count behind. One that goes quiet
 * before catching up (a server still recovering its store) is replaced.
 */
import { EventEmitter } from 'node:events';
import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { Logger } from '../../lib/logger.ts';
import type { Bus } from './bus.ts';

export interface MirrorEntry {
  key: string;
  /** null when the key's latest operation is a delete or purge. */
  value: Uint8Array | null;
  revision: number;
}

export interface KvMirrorEvents {
  /** A fresh copy is in place (first time, or after the bus came back). */
  synced: [];
  /** The copy can no longer be trusted as current (bus down). */
  unsynced: [];
  /** One key changed while synced. */
  change: [entry: MirrorEntry];
}

const RETRY_MS = 500;
/** A watch not caught up that has delivered nothing for this long is judged again. */
const QUIET_MS = 2_000;

export class KvMirror extends EventEmitter<KvMirrorEvents> {
  readonly #bus: Bus;
  readonly #kv: KV;
  readonly #log: Logger;
  readonly #ensure: () => Promise<unknown>;
  #entries = new Map<string, MirrorEntry>();
  #synced = false;
  #generation = 0;
  #stopWatch: (() => void) | null = null;
  #retry: NodeJS.Timeout | null = null;
  #stopped = false;

  /** `ensure` (re)creates the bucket before each new watch: a NATS server that lost its store gets it back. */
  constructor(bus: Bus, kv: KV, log: Logger, ensure: () => Promise<unknown> = async () => {}) {
    super();
    this.#bus = bus;
    this.#kv = kv;
    this.#log = log;
    this.#ensure = ensure;
    bus.on('down', this.#onDown);
    bus.on('closed', this.#onDown);
    bus.on('up', this.#onUp);
  }

  /** Starts watching; resolves once the first copy is in, at once if the bus is down now, or
   * after `timeoutMs` (the copy stays unsynced and keeps trying; callers see `synced` false). */
  async start(timeoutMs = 10_000): Promise<void> {
    if (!this.#bus.up) return;
    let timer: NodeJS.Timeout | undefined;
    let onSynced = (): void => {};
    const synced = new Promise<void>((resolve) => {
      onSynced = resolve;
      this.once('synced', onSynced);
      timer = setTimeout(resolve, timeoutMs);
    });
    this.#restart();
    await synced;
    clearTimeout(timer);
    this.off('synced', onSynced);
  }

  get synced(): boolean {
    return this.#synced && this.#bus.up;
  }

  /** The latest entry for `key` in the copy (deleted keys have a null value), whether synced or not. */
  get(key: string): MirrorEntry | undefined {
    return this.#entries.get(key);
  }

  entries(): IterableIterator<MirrorEntry> {
    return this.#entries.values();
  }

  stop(): void {
    this.#stopped = true;
    this.#bus.off('down', this.#onDown);
    this.#bus.off('closed', this.#onDown);
    this.#bus.off('up', this.#onUp);
    this.#halt();
  }

  readonly #onDown = (): void => {
    const was = this.#synced;
    this.#halt();
    if (was) this.emit('unsynced');
  };

  readonly #onUp = (): void => {
    if (!this.#stopped) this.#restart();
  };

  #halt(): void {
    this.#generation++;
    this.#synced = false;
    this.#stopWatch?.();
    this.#stopWatch = null;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
  }

  #restart(): void {
    this.#halt();
    const generation = this.#generation;
    void this.#watch(generation).catch((err: Error) => {
      if (generation !== this.#generation || this.#stopped) return;
      this.#log.warn({ err: err.message }, 'bus watch failed; retrying');
      this.#retry = setTimeout(() => {
        if (generation === this.#generation && this.#bus.up) this.#restart();
      }, RETRY_MS);
    });
  }

  async #watch(generation: number): Promise<void> {
    const fresh = new Map<string, MirrorEntry>();
    await this.#ensure();
    if (generation !== this.#generation) return;
    const iter = await this.#kv.watch();
    if (generation !== this.#generation) {
      iter.stop();
      return;
    }
    // Caught up once an entry at or past the bucket's last sequence (as the latest status read
    // it: at the start, then on each quiet judgement) is in, or the watch says nothing is pending,
    // or the bucket is empty. The last sequence, not only `delta`: a key that expires while the
    // watch runs leaves the pending count behind.
    let lastSeq = Number.POSITIVE_INFINITY;
    let newest = 0;
    let heard = Date.now();
    const swapIn = (): void => {
      if (this.#synced || generation !== this.#generation) return;
      clearInterval(quiet);
      this.#entries = fresh;
      this.#synced = true;
      this.emit('synced');
    };
    const judge = (): void => {
      void this.#kv
        .status()
        .then((s) => {
          if (generation !== this.#generation || this.#synced) return;
          lastSeq = s.streamInfo.state.last_seq;
          if (s.streamInfo.state.messages === 0 || newest >= lastSeq) return swapIn();
          if (Date.now() - heard < QUIET_MS) return;
          this.#log.warn({ bucket: s.bucket }, 'bus watch went quiet before catching up; starting another');
          this.#restart();
        })
        .catch(() => {});
    };
    // A watch that delivers nothing before catching up (a server still recovering its store)
    // is judged again, and replaced if the bucket holds what it has not delivered.
    const quiet = setInterval(() => {
      if (this.#synced || generation !== this.#generation) clearInterval(quiet);
      else if (Date.now() - heard >= QUIET_MS) judge();
    }, QUIET_MS / 2);
    quiet.unref();
    this.#stopWatch = () => {
      clearInterval(quiet);
      iter.stop();
    };
    judge();
    for await (const e of iter) {
      if (generation !== this.#generation) break;
      heard = Date.now();
      const entry = toMirrorEntry(e);
      if (!this.#synced) {
        fresh.set(entry.key, entry);
        newest = Math.max(newest, entry.revision);
        if (e.delta === 0 || newest >= lastSeq) swapIn();
        continue;
      }
      const known = this.#entries.get(entry.key);
      if (known && known.revision >= entry.revision) continue;
      this.#entries.set(entry.key, entry);
      this.emit('change', entry);
    }
    // The watch ended on its own (not halted): start another while the bus is up.
    if (generation === this.#generation && !this.#stopped && this.#bus.up) {
      this.#log.warn('bus watch ended; restarting it');
      this.#retry = setTimeout(() => this.#restart(), RETRY_MS);
    }
  }
}

function toMirrorEntry(e: KvWatchEntry): MirrorEntry {
  return { key: e.key, value: e.operation === 'PUT' ? e.value : null, revision: e.revision };
}
