/**
 * The hub's copy of each host's audit log (issue 13), to compare with its own. When an agent
 * reports a new head, or a link comes up, or someone asks, the hub fetches the entries it has not
 * seen (GET AUDIT_FEED_PATH?after=SEQ, bounded pages) and checks their chain as it goes: each
 * hash, each seq and prev following on, and the last entry equal to the head the agent reported.
 * A new link (an agent restart, a reconnect) reads the log again from the start, so an entry
 * removed from the host's file since is noticed. At most MAX_KEPT entries are kept per node (the
 * newest), with only the fields the comparison needs; the chain is still checked over all of them.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import { AUDIT_FEED_PATH } from '../../protocol/audit-feed.ts';
import { readBounded } from '../../lib/read-bounded.ts';
import type { Logger } from '../../lib/logger.ts';
import { GENESIS, TEAR_OP, parseEntryLine } from '../../agent/audit/audit-entry.ts';
import { entryHash } from '../../agent/audit/entry-line.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { HostEntry } from '../../protocol/audit-feed.ts';

/** Newest host entries kept in memory per node. */
export const MAX_KEPT = 20_000;
/** Pages fetched in one go before yielding (the next head report or request goes on). */
const MAX_PAGES = 400;
const PAGE_BYTES = 4 * 1024 * 1024;

/** What the comparison needs of one host entry (shared with the UI). */
export type { HostEntry };

export interface HostMirror {
  /** The head the agent last reported (null before its first report). */
  head: { seq: number; hash: string } | null;
  /** The last seq fetched and checked, and its hash. */
  checkedThrough: number;
  lastHash: string;
  /** The first problem in the host's chain, as the hub saw it; null while it holds. */
  chainProblem: string | null;
  /** The newest entries (at most MAX_KEPT), in seq order. */
  entries: HostEntry[];
  /** When the last fetch began that reached the reported head (ms); null before one did. */
  fetchedAt: number | null;
}

interface NodeState extends HostMirror {
  link: AgentLink | null;
  running: Promise<void> | null;
  again: boolean;
}

export class HostAuditMirror {
  readonly #registry: NodeRegistry;
  readonly #log: Logger;
  readonly #nodes = new Map<string, NodeState>();

  constructor(registry: NodeRegistry, log: Logger) {
    this.#registry = registry;
    this.#log = log;
    registry.on('linked', (link) => this.#follow(link));
  }

  /** A new link: start the node's copy afresh and fetch on each head it reports. */
  #follow(link: AgentLink): void {
    const state = this.#fresh(link.nodeName);
    state.link = link;
    link.on('inventory', (msg) => {
      if (msg.t !== 'auditHead' || state.link !== link) return;
      state.head = { seq: msg.seq, hash: msg.hash };
      if (msg.seq !== state.checkedThrough || msg.hash !== state.lastHash) this.#schedule(state);
    });
    link.once('close', () => {
      if (state.link === link) state.link = null;
    });
  }

  #fresh(node: string): NodeState {
    const old = this.#nodes.get(node);
    const state: NodeState = { head: old?.head ?? null, checkedThrough: 0, lastHash: GENESIS, chainProblem: null, entries: [], fetchedAt: null, link: old?.link ?? null, running: null, again: false };
    this.#nodes.set(node, state);
    return state;
  }

  /** Brings the node's copy up to the host's current head (fetching now when it can), and returns it. */
  async refresh(node: string, opts: { full?: boolean } = {}): Promise<HostMirror | null> {
    let state = this.#nodes.get(node);
    if (opts.full && state) {
      const link = state.link;
      await state.running;
      state = this.#fresh(node);
      state.link = link;
    }
    if (!state) return null;
    if (state.link && !state.link.closed) {
      const head = this.#registry.view(this.#registry.require(node)).hostAudit;
      if (head) state.head = head;
      await this.#schedule(state);
    }
    return state;
  }

  #schedule(state: NodeState): Promise<void> {
    if (state.running) {
      state.again = true;
      return state.running;
    }
    state.running = (async () => {
      try {
        do {
          state.again = false;
          await this.#fetch(state);
        } while (state.again);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'could not fetch the host audit log');
      } finally {
        state.running = null;
      }
    })();
    return state.running;
  }

  /** Fetches pages after checkedThrough until the reported head (or an empty page). */
  async #fetch(state: NodeState): Promise<void> {
    const link = state.link;
    if (!link || link.closed || !state.head) return;
    const began = Date.now();
    for (let pages = 0; pages < MAX_PAGES && state.checkedThrough < state.head.seq; pages++) {
      const res = await link.request({ method: 'GET', path: `${AUDIT_FEED_PATH}?after=${state.checkedThrough}`, timeoutMs: 15_000 });
      const raw = await readBounded(res.stream as AsyncIterable<Buffer>, PAGE_BYTES);
      if (raw === null) throw new DockfleetError('payload_too_large', `host audit page from ${link.nodeName} exceeds ${PAGE_BYTES} bytes`);
      if (res.status !== 200) throw new DockfleetError('protocol_error', `node ${link.nodeName} answered ${res.status} for its audit log`);
      const lines = raw
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '');
      if (lines.length === 0) break;
      for (const line of lines) this.#take(state, line);
    }
    if (state.checkedThrough === state.head.seq) {
      if (state.lastHash !== state.head.hash) this.#problem(state, `the host's entry seq ${state.head.seq} is not the head its agent reported: the log changed under it`);
      state.fetchedAt = began;
    } else if (state.checkedThrough > state.head.seq) {
      this.#problem(state, `the host's log reaches seq ${state.checkedThrough}, past the head ${state.head.seq} its agent reported`);
      state.fetchedAt = began;
    }
  }

  /** Checks one line against the chain so far and keeps it. */
  #take(state: NodeState, line: string): void {
    const entry = parseEntryLine(line);
    if (!entry) return this.#problem(state, `after seq ${state.checkedThrough}: a line that is not an audit entry`);
    if (entry.seq <= state.checkedThrough) return this.#problem(state, `seq ${entry.seq} came again after seq ${state.checkedThrough}: entries reordered`);
    if (entryHash(entry) !== entry.hash) this.#problem(state, `seq ${entry.seq}: hash mismatch: the entry was edited`);
    else if (entry.seq !== state.checkedThrough + 1) this.#problem(state, `seq ${entry.seq}: expected seq ${state.checkedThrough + 1}: an entry was removed or the entries reordered`);
    else if (entry.prev !== state.lastHash) this.#problem(state, `seq ${entry.seq}: prev does not match seq ${state.checkedThrough}: an entry was removed or the entries reordered`);
    state.checkedThrough = entry.seq;
    state.lastHash = entry.hash;
    if (entry.op === TEAR_OP) return;
    const kept: HostEntry = { seq: entry.seq, time: entry.time, op: entry.op, target: entry.target, result: entry.result };
    if (entry.status !== undefined) kept.status = entry.status;
    if (entry.user !== undefined) kept.user = entry.user;
    if (entry.ref !== undefined) kept.ref = entry.ref;
    state.entries.push(kept);
    if (state.entries.length > MAX_KEPT * 1.25) state.entries.splice(0, state.entries.length - MAX_KEPT);
  }

  #problem(state: NodeState, message: string): void {
    state.chainProblem ??= message;
  }
}
