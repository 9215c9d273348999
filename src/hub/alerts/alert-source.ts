/**
 * What an alert source is: something that watches one part of the hub (nodes, containers,
 * stacks, jobs; later certificates and backups) and tells the incident book which conditions
 * hold. A source never sends anything and never deduplicates: it says "this key is bad, here is
 * why" or "this key is fine" as often as it likes, and the book turns that into one incident.
 */
import type { IncidentSeverity } from '../../store/alert-store.ts';

export interface Condition {
  /** Stable per condition, e.g. `node-offline:shop-01`; prefixed by the source's kind. */
  key: string;
  severity: IncidentSeverity;
  node: string | null;
  /** What is affected: a node, container, stack or job name. */
  subject: string;
  title: string;
  detail: string;
}

/** The incident book as sources see it. */
export interface ConditionSink {
  /** The condition holds (opens an incident, or updates the open one). */
  raise(kind: string, condition: Condition): void;
  /** The condition no longer holds (resolves its open incident, if any). */
  clear(key: string): void;
  /** Resolves every open incident whose key starts with `prefix` and is not in `holding`. */
  clearOthers(prefix: string, holding: ReadonlySet<string>): void;
  /** Open incidents' keys and when they last changed (a source can resume after a restart). */
  openKeys(prefix: string): Map<string, number>;
}

export interface AlertSource {
  /** The incident kind, also the key prefix: `node-offline`, `container`, `stack-drift`, `job-failed`. */
  readonly kind: string;
  /** Starts watching; returns what stops it. */
  start(sink: ConditionSink): () => void;
}
