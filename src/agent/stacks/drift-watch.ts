/**
 * Watches every stack this agent holds for drift: the engine's container events for Compose
 * projects trigger a check within a second, and a periodic check catches what events miss
 * (an engine restart, a dropped event stream). Emits 'change' when any stack's report
 * changed; `status` is the newest report, as STACKS_STATUS_PATH sends it.
 */
import { EventEmitter } from 'node:events';
import { COMPOSE_LABELS, type StacksStatusMessage } from '../../protocol/stacks.ts';
import type { StackStateDir } from './desired-state.ts';
import { findDrift } from './stack-drift.ts';
import { observeContainers } from './observe-stack.ts';
import type { StackEngine } from './stack-engine.ts';

export type StackStatus = StacksStatusMessage['stacks'][number];

export interface DriftWatchOptions {
  /** Wait after an event before looking (coalesces bursts). Default 500 ms. */
  debounceMs?: number;
  /** Look at every stack this often regardless. Default 5 s. */
  periodMs?: number;
}

export class DriftWatcher extends EventEmitter<{ change: [] }> {
  readonly #engine: StackEngine;
  readonly #state: StackStateDir;
  readonly #debounceMs: number;
  readonly #periodMs: number;
  #status: StackStatus[] = [];
  #timer: NodeJS.Timeout | null = null;
  #checking: Promise<void> | null = null;
  #again = false;

  constructor(engine: StackEngine, state: StackStateDir, opts: DriftWatchOptions = {}) {
    super();
    this.#engine = engine;
    this.#state = state;
    this.#debounceMs = opts.debounceMs ?? 500;
    this.#periodMs = opts.periodMs ?? 5_000;
  }

  get status(): StacksStatusMessage {
    return { t: 'stacks', stacks: this.#status };
  }

  /** Look again soon (after a job changed a stack, or an engine event). */
  poke(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.check();
    }, this.#debounceMs);
  }

  /** One look at every stack; concurrent calls share one look and ask for another after it. */
  async check(): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = this.#look().finally(() => {
      this.#checking = null;
      if (this.#again) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  async #look(): Promise<void> {
    const next: StackStatus[] = [];
    for (const stack of await this.#state.stacks()) {
      let desired;
      try {
        desired = await this.#state.read(stack, 'desired');
      } catch {
        continue;
      }
      if (!desired) continue;
      const base = { stack, revision: desired.revision.revision, at: Date.now() };
      if (desired.state === 'failed') {
        // A deploy failed on a host that held nothing of the stack: it is on no revision.
        next.push({ ...base, revision: Object.keys(desired.services).length === 0 ? 0 : base.revision, state: 'failed', drift: [] });
        continue;
      }
      if (desired.state === 'removed' || desired.state === 'deploying' || (await this.#state.read(stack, 'journal').catch(() => null))) {
        next.push({ ...base, state: desired.state === 'removed' ? 'removed' : 'deploying', drift: [] });
        continue;
      }
      const drift = findDrift(desired, await observeContainers(this.#engine, stack));
      next.push({ ...base, state: drift.length > 0 ? 'drifted' : desired.state, drift });
    }
    const key = (list: StackStatus[]): string => JSON.stringify(list.map(({ at: _at, ...rest }) => rest));
    const changed = key(next) !== key(this.#status);
    if (changed) {
      this.#status = next;
      this.emit('change');
    }
  }

  /** Runs until `signal`: the event stream (reopened when it ends) and the periodic check. */
  async run(signal: AbortSignal): Promise<void> {
    const periodic = setInterval(() => void this.check().catch(() => {}), this.#periodMs);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(periodic);
        if (this.#timer) clearTimeout(this.#timer);
      },
      { once: true },
    );
    await this.check().catch(() => {});
    const filters = encodeURIComponent(JSON.stringify({ type: ['container'], label: [COMPOSE_LABELS.project] }));
    while (!signal.aborted) {
      try {
        const res = await this.#engine.client.raw({ path: `/events?filters=${filters}`, signal });
        for await (const _chunk of res) this.poke();
      } catch {
        // The engine went away: the periodic check goes on; try the stream again shortly.
      }
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
