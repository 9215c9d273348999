/** Whether a host's own audit log and the hub's agree (GET /api/v1/nodes/NAME/audit-agreement),
 * as the node card and the audit page show it. */
import { apiNodePath, get } from './api.ts';
import type { HostEntry } from '../../protocol/audit-feed.ts';

/** A host entry the hub has no row for (src/protocol/audit-feed.ts). */
export type HostOnlyEntry = HostEntry;

export interface AuditAgreement {
  node: string;
  state: 'agree' | 'differ' | 'unknown';
  hostHead: { seq: number; hash: string } | null;
  checkedThrough: number;
  checkedFrom: number | null;
  hostChainProblem: string | null;
  hubOnly: Array<{ id: number; time: string; user: string; method: string; path: string; status: number | null }>;
  hostOnly: HostOnlyEntry[];
  hubOnlyCount: number;
  hostOnlyCount: number;
  checkedAt: string | null;
  reason?: string;
}

export function fetchAgreement(node: string, signal: AbortSignal): Promise<AuditAgreement> {
  return get<AuditAgreement>(apiNodePath(node, '/audit-agreement'), { signal });
}

/** "Host log agrees" / "Host log differs: 2 entries on one side only" / not compared yet. */
export function agreementWords(a: AuditAgreement): string {
  if (a.state === 'agree') return 'Host log agrees';
  if (a.state === 'unknown') return 'Host log not compared yet';
  const n = a.hubOnlyCount + a.hostOnlyCount;
  if (n === 0) return 'Host log differs: its chain is broken';
  return `Host log differs: ${n} ${n === 1 ? 'entry' : 'entries'} on one side only`;
}
