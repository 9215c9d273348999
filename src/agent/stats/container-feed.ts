/**
 * One container's stats as the engine pushes them (GET /containers/ID/stats?stream=true), held
 * open while someone watches the container. Why a stream and not one-shot answers: dockerd
 * collects every subscribed container once per collection cycle (1 s plus the time to read them
 * all, about 1.6 s for 200 containers), and a `one-shot=true` answer also waits for the next
 * cycle, so each costs about a second of waiting; asked 8 at a time, 200 containers took 26 s a
 * round and half the list never drew. A stream costs one socket (its own, outside the agent's
 * shared engine pool) and one JSON parse per cycle. The newest point waits here until the
 * sampler's tick takes it; memory is one point and one set of counters per feed.
 */
import http from 'node:http';
import type { ContainerPoint } from '../../protocol/stats.ts';
import { NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import { countersOf, pointOf, type Counters, type EngineStats } from './stats-math.ts';

/** A stats frame is a few KB; anything far larger is not one. */
const MAX_FRAME = 1024 * 1024;
/** A stream the engine refused or ended (container gone, engine restarting) is tried again after this. */
export const FEED_RETRY_MS = 5_000;

export class ContainerFeed {
  readonly id: string;
  readonly #socketPath: string;
  #req: http.ClientRequest | null = null;
  #before: Counters | null = null;
  #fresh: ContainerPoint | null = null;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;
  /** Frames read since the feed opened (diagnostics and tests). */
  frames = 0;

  constructor(socketPath: string, id: string) {
    this.#socketPath = socketPath;
    this.id = id;
    this.#open();
  }

  /** The point that arrived since the last call, or null (none yet, or the container is not running). */
  take(): ContainerPoint | null {
    const p = this.#fresh;
    this.#fresh = null;
    return p;
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = null;
    this.#req?.destroy();
    this.#req = null;
  }

  #open(): void {
    if (this.#closed) return;
    const splitter = new NdjsonSplitter(MAX_FRAME);
    const req = http.request({ socketPath: this.#socketPath, path: `/containers/${this.id}/stats?stream=true`, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return;
      }
      res.on('data', (chunk: Buffer) => {
        let lines: string[];
        try {
          lines = splitter.push(chunk);
        } catch {
          req.destroy();
          return;
        }
        for (const line of lines) this.#onFrame(line);
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    // Ends for any reason (refused, container removed, engine gone): try again later while watched.
    req.on('close', () => {
      if (this.#req !== req) return;
      this.#req = null;
      this.#before = null;
      this.#fresh = null;
      if (this.#closed) return;
      this.#retry = setTimeout(() => {
        this.#retry = null;
        this.#open();
      }, FEED_RETRY_MS);
    });
    this.#req = req;
    req.end();
  }

  #onFrame(text: string): void {
    const parsed = parseJsonLine(text);
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) return;
    const stats = parsed.value as EngineStats;
    this.frames++;
    const now = countersOf(stats, Date.now());
    // A stopped container streams zeros: nothing to show, and nothing to compare with later.
    if (now.systemTotal === 0) {
      this.#before = null;
      this.#fresh = null;
      return;
    }
    const before = this.#before;
    this.#before = now;
    // The first frame only sets the counters: with nothing to compare, CPU and the rates would
    // read 0, a false dip on every chart each time a feed (re)opens.
    if (before) this.#fresh = pointOf(this.id, stats, now, before);
  }
}
