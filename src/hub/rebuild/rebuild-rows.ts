/**
 * The host-rebuild tables' rows (escrowed repository keys, replacement codes, rebuilds) as both
 * engines return them (SQLite's INTEGER and PostgreSQL's BIGINT both arrive as numbers), the
 * records they map to, and an escrow's column values in the INSERT's order.
 */
import type { RebuildRecord } from './rebuild-record.ts';
import type { EscrowRecord, StoredRebuild } from './rebuild-store.ts';

export interface EscrowRow {
  node: string;
  repository: string;
  wrapped_key: string;
  created_at: number;
  job_id: string;
}

export const escrowFrom = (r: EscrowRow): EscrowRecord => ({ node: r.node, repository: r.repository, wrappedKey: r.wrapped_key, createdAt: r.created_at, jobId: r.job_id });

/** volume_backup_escrow's columns, in the INSERT's order: node, repository, wrapped_key, created_at, job_id. */
export const escrowValues = (e: EscrowRecord): unknown[] => [e.node, e.repository, e.wrappedKey, e.createdAt, e.jobId];

export interface ReplaceCodeRow {
  node: string;
  sealed_secrets: string | null;
}

export const replaceCodeFrom = (r: ReplaceCodeRow): { node: string; sealedSecrets: string | null } => ({ node: r.node, sealedSecrets: r.sealed_secrets });

/** A node_rebuilds row as `SELECT record, sealed_secrets` returns it. */
export interface RebuildRow {
  record: string;
  sealed_secrets: string | null;
}

export const storedRebuildFrom = (r: RebuildRow): StoredRebuild => ({ record: JSON.parse(r.record) as RebuildRecord, sealedSecrets: r.sealed_secrets });
