/**
 * Stacks as durable intent (hub/stacks/): node labels, stacks, their revisions and each
 * node's reported state. Filled in by each database folder (sqlite/sqlite-stack-store.ts).
 * Methods reject with `storage_full` when the storage cannot take a write.
 */
export interface StackStore {
  readonly kind: 'stacks';
}
