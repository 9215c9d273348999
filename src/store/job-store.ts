/**
 * The durable half of the job queue (hub/jobs/): jobs, their steps and log lines. Filled in by
 * each database folder (sqlite/sqlite-job-store.ts). Methods reject with `storage_full` when
 * the storage cannot take a write.
 */
export interface JobStore {
  readonly kind: 'jobs';
}
