/**
 * Whether a host's audit log and the hub's agree (issue 13), per node: the host entries the hub
 * fetched (host-audit-mirror.ts) matched to the hub's own audit rows by `ref`, the hub's row id the
 * Docker gateway sends with each call (x-dockfleet-audit-ref).
 * - hubOnly: hub rows of mutating Docker calls on the node that reached the host (not refused at
 *   the hub: its cap, the node offline or unreachable, its storage) and finished before the host's
 *   log was last read, with no host entry naming them;
 * - hostOnly: host entries whose ref names no hub row on this node, or that carry no ref at all
 *   (an action the hub never recorded). A job's entries carry `job <id>`, matched to the hub's job.
 * The comparison covers the entries the hub holds (the newest MAX_KEPT) and the hub rows from the
 * first of them on.
 */
import type { AuditRow, Store } from '../../store/store.ts';
import { isMutating } from '../audit-log.ts';
import type { HostAuditMirror, HostEntry } from './host-audit-mirror.ts';

/** Statuses the hub itself answers before or instead of the host: its cap, node offline/timeout, storage. */
const HUB_SIDE = new Set([429, 502, 503, 504, 507]);
/** A hub row finished this long before the host's log was read must be in it. */
const SETTLE_MS = 1_000;
/** Hub rows compared at most (the newest), and one-sided entries listed at most. */
const MAX_ROWS = 5_000;
const MAX_LISTED = 100;

export type AgreementState = 'agree' | 'differ' | 'unknown';

export interface HubOnlyRow {
  id: number;
  time: string;
  user: string;
  method: string;
  path: string;
  status: number | null;
}

export interface Agreement {
  node: string;
  state: AgreementState;
  hostHead: { seq: number; hash: string } | null;
  /** The last host entry the hub fetched and checked, and the first it still holds. */
  checkedThrough: number;
  checkedFrom: number | null;
  /** The host's chain as the hub read it: null while it holds. */
  hostChainProblem: string | null;
  hubOnly: HubOnlyRow[];
  hostOnly: HostEntry[];
  hubOnlyCount: number;
  hostOnlyCount: number;
  /** When the host's log was last read up to its head. */
  checkedAt: string | null;
  /** Why the state is unknown. */
  reason?: string;
}

/** Did this hub row's call go on to the host? */
function reachedHost(row: AuditRow): boolean {
  if (row.status === null || HUB_SIDE.has(row.status) || !isMutating(row.method)) return false;
  // Docker gateway rows only: REST routes act on the hub, and terminal and volume-file rows carry no ref to the host.
  return !row.path.startsWith('/api/') && !row.path.startsWith('/volumes/') && !row.path.endsWith('(terminal)');
}

export async function compareWithHost(node: string, mirror: HostAuditMirror, store: Store, opts: { full?: boolean } = {}): Promise<Agreement> {
  const host = await mirror.refresh(node, opts);
  const base = { node, hostHead: host?.head ?? null, checkedThrough: host?.checkedThrough ?? 0, checkedFrom: host?.entries[0]?.seq ?? null, hostChainProblem: host?.chainProblem ?? null };
  if (!host || host.fetchedAt === null) {
    const reason = !host ? 'the hub has not been linked to this node since it started' : host.head ? 'the host log has not been read up to its head yet' : 'the agent has not reported its audit head';
    return { ...base, state: 'unknown', hubOnly: [], hostOnly: [], hubOnlyCount: 0, hostOnlyCount: 0, checkedAt: null, reason };
  }
  const fetchedAt = host.fetchedAt;
  const entries = host.entries;
  const byRef = new Map<number, HostEntry>();
  let minRef = Infinity;
  for (const e of entries) {
    if (e.ref !== undefined && /^\d+$/.test(e.ref)) {
      const id = Number(e.ref);
      byRef.set(id, e);
      minRef = Math.min(minRef, id);
    }
  }
  const firstTime = entries.length ? Date.parse(entries[0]!.time) : fetchedAt;
  const windowStart = Math.min(firstTime, fetchedAt) - 10 * 60_000;
  const rows = await store.queryAudit({ node, since: windowStart, limit: MAX_ROWS });
  const hubIds = new Set(rows.map((r) => r.id));
  const hubOnly = rows
    .filter((r) => (r.id >= minRef || r.at >= firstTime) && reachedHost(r) && (r.finishedAt ?? Infinity) <= fetchedAt - SETTLE_MS && !byRef.has(r.id))
    .sort((a, b) => a.id - b.id)
    .map((r): HubOnlyRow => ({ id: r.id, time: new Date(r.at).toISOString(), user: r.user, method: r.method, path: r.path, status: r.status }));

  const hostOnly: HostEntry[] = [];
  for (const e of entries) {
    if (!(await hubKnows(e, node, hubIds, store))) hostOnly.push(e);
  }
  const differ = hubOnly.length > 0 || hostOnly.length > 0 || host.chainProblem !== null;
  return {
    ...base,
    state: differ ? 'differ' : 'agree',
    hubOnly: hubOnly.slice(-MAX_LISTED),
    hostOnly: hostOnly.slice(-MAX_LISTED),
    hubOnlyCount: hubOnly.length,
    hostOnlyCount: hostOnly.length,
    checkedAt: new Date(fetchedAt).toISOString(),
  };
}

/** Whether the hub has a record of what this host entry names. */
async function hubKnows(entry: HostEntry, node: string, hubIds: Set<number>, store: Store): Promise<boolean> {
  const ref = entry.ref;
  if (ref === undefined) return false;
  if (/^\d+$/.test(ref)) {
    const id = Number(ref);
    if (hubIds.has(id)) return true;
    const [row] = await store.queryAudit({ node, before: id + 1, limit: 1 });
    return row?.id === id;
  }
  const job = /^job (\S+)$/.exec(ref);
  if (job) return (await store.jobs.getJob(job[1]!))?.node === node;
  return false;
}
