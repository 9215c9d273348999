/**
 * Serves the host's audit log to the hub over the channel (GET AUDIT_FEED_PATH?after=SEQ): the
 * entries after SEQ, as NDJSON, a bounded page at a time, each line exactly as the log holds it, so
 * the hub can check the chain itself against the head the agent reports. Lines that are not entries
 * (a torn write) are left out; the chain goes on past them from the last whole entry.
 *
 * Each answer remembers where its last entry ended, so the next page (after = that seq) reads on
 * from there instead of from the top of the file.
 */
import { open } from 'node:fs/promises';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { AUDIT_FEED_MAX_BYTES, AUDIT_FEED_PAGE } from '../../protocol/audit-feed.ts';
import { parseEntryLine } from './audit-entry.ts';
import type { HostAuditLog } from './host-audit.ts';

const CHUNK = 256 * 1024;
/** Where the last few answers ended: seq → byte offset just after that entry's line. */
const RESUME_POINTS = 16;

export interface FeedPage {
  lines: string[];
  /** The byte offset after the last line read, and that line's seq (for resuming). */
  end: { seq: number; offset: number } | null;
}

export class AuditFeed {
  readonly #audit: HostAuditLog;
  readonly #resume = new Map<number, number>();

  constructor(audit: HostAuditLog) {
    this.#audit = audit;
  }

  /** The entries after `after`, at most `limit` of them (and about AUDIT_FEED_MAX_BYTES). */
  async page(after: number, limit = AUDIT_FEED_PAGE): Promise<FeedPage> {
    const lines: string[] = [];
    let bytes = 0;
    let end: FeedPage['end'] = null;
    if (after >= this.#audit.head().seq) return { lines, end };
    // `base`: where buf[0] sits in the file; `readAt`: where the next read starts.
    let base = this.#resume.get(after) ?? 0;
    let readAt = base;
    const file = await open(this.#audit.path, 'r');
    try {
      let carry = Buffer.alloc(0);
      for (;;) {
        const chunk = Buffer.alloc(CHUNK);
        const { bytesRead } = await file.read(chunk, 0, CHUNK, readAt);
        if (bytesRead === 0) break;
        readAt += bytesRead;
        const buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
        let start = 0;
        for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
          const text = buf.subarray(start, nl).toString('utf8');
          start = nl + 1;
          const entry = parseEntryLine(text);
          if (!entry || entry.seq <= after) continue;
          lines.push(text);
          bytes += Buffer.byteLength(text) + 1;
          end = { seq: entry.seq, offset: base + start };
          if (lines.length >= limit || bytes >= AUDIT_FEED_MAX_BYTES) return this.#done(lines, end);
        }
        base += start;
        carry = Buffer.from(buf.subarray(start));
      }
    } finally {
      await file.close();
    }
    return this.#done(lines, end);
  }

  #done(lines: string[], end: FeedPage['end']): FeedPage {
    if (end) {
      this.#resume.set(end.seq, end.offset);
      if (this.#resume.size > RESUME_POINTS) this.#resume.delete(this.#resume.keys().next().value!);
    }
    return { lines, end };
  }
}

/** One feed (and its resume points) per log. */
const feeds = new WeakMap<HostAuditLog, AuditFeed>();

/** The channel handler: `?after=SEQ` (default 0) and `&limit=N` (at most AUDIT_FEED_PAGE). */
export async function serveAuditFeed(audit: HostAuditLog, req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
  let feed = feeds.get(audit);
  if (!feed) feeds.set(audit, (feed = new AuditFeed(audit)));
  const query = new URLSearchParams(req.url.split('?')[1] ?? '');
  const after = Number(query.get('after') ?? '0');
  const limit = Number(query.get('limit') ?? String(AUDIT_FEED_PAGE));
  if (!Number.isSafeInteger(after) || after < 0 || !Number.isSafeInteger(limit) || limit < 1) {
    const body = JSON.stringify({ message: 'after and limit must be whole numbers (after ≥ 0, limit ≥ 1)' });
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    return void res.end(body);
  }
  let page: FeedPage;
  try {
    page = await feed.page(after, Math.min(limit, AUDIT_FEED_PAGE));
  } catch (err) {
    const body = JSON.stringify({ message: `cannot read the host audit log: ${(err as Error).message}` });
    res.writeHead(500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    return void res.end(body);
  }
  const body = page.lines.length ? `${page.lines.join('\n')}\n` : '';
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
