/**
 * The registry_credentials row as both engines return it (SQLite's INTEGER and PostgreSQL's
 * BIGINT both arrive as numbers), the record it maps to, and a record's column values in the
 * INSERT's order.
 */
import type { RegistryCredentialRecord } from './registry-store.ts';

export interface RegistryCredentialRow {
  id: string;
  server: string;
  username: string;
  sealed_secret: string;
  created_by: string;
  created_at: number;
}

export const registryCredentialFrom = (r: RegistryCredentialRow): RegistryCredentialRecord => ({
  id: r.id,
  server: r.server,
  username: r.username,
  sealedSecret: r.sealed_secret,
  createdBy: r.created_by,
  createdAt: r.created_at,
});

/** registry_credentials' columns, in the INSERT's order: id, server, username, sealed_secret, created_by, created_at. */
export const registryCredentialValues = (r: RegistryCredentialRecord): unknown[] => [r.id, r.server, r.username, r.sealedSecret, r.createdBy, r.createdAt];
