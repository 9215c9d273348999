/**
 * The host audit log's entries over the channel (issue 13): the hub asks
 * `GET AUDIT_FEED_PATH?after=SEQ` and the agent answers NDJSON, one entry (exactly as its log
 * holds it) a line, the entries with seq > SEQ in order, at most AUDIT_FEED_PAGE of them and about
 * AUDIT_FEED_MAX_BYTES. The hub pages on from the last seq it got.
 */
export const AUDIT_FEED_PATH = '/_dockfleet/v1/audit';
/** Entries in one answer, at most. */
export const AUDIT_FEED_PAGE = 256;
/** Bytes in one answer, about (a page stops after the entry that passes this). */
export const AUDIT_FEED_MAX_BYTES = 1024 * 1024;

/** What the hub keeps of one host entry, and shows (the agreement's `hostOnly`). */
export interface HostEntry {
  seq: number;
  time: string;
  op: string;
  target: string;
  result: string;
  status?: number;
  user?: string;
  ref?: string;
}
