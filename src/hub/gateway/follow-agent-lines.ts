/**
 * Follows one long-lived NDJSON feed an agent serves (stack status, volume backup reports): opens
 * `GET path` on the link, hands each line to `onLine`, and opens it again when it closes while the
 * link lives (and is not draining) — at once after a feed that answered 200, else with a doubling delay (1 s to 60 s), so
 * an agent without the feed is not asked again and again. A line over `maxLine` bytes resets the
 * stream (logged with `what`) rather than grow a buffer without end.
 */
import http2 from 'node:http2';
import { LineTooLongError, NdjsonSplitter } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentLink } from './agent-link.ts';

const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export interface AgentLinesFeed {
  path: string;
  maxLine: number;
  /** For the log line when a line is too long, e.g. "stack status". */
  what: string;
  log: Logger;
  onLine(link: AgentLink, line: string): void;
}

export function followAgentLines(link: AgentLink, feed: AgentLinesFeed, failures = 0): void {
  if (link.closed || link.draining) return;
  let stream: http2.ClientHttp2Stream;
  try {
    stream = link.openStream({ ':method': 'GET', ':path': feed.path }, { endStream: true });
  } catch {
    return;
  }
  const splitter = new NdjsonSplitter(feed.maxLine);
  let ok = false;
  stream.once('response', (headers) => {
    ok = headers[':status'] === 200;
    if (!ok) stream.close(http2.constants.NGHTTP2_CANCEL);
  });
  stream.on('data', (chunk: Buffer) => {
    let lines: string[];
    try {
      lines = splitter.push(chunk);
    } catch (err) {
      if (!(err instanceof LineTooLongError)) throw err;
      feed.log.warn({ node: link.nodeName }, `${feed.what} line too long; reopening the stream`);
      ok = false;
      stream.close(http2.constants.NGHTTP2_CANCEL);
      return;
    }
    for (const line of lines) feed.onLine(link, line);
  });
  stream.on('error', () => {});
  // Told to move (drain): the feed never ends by itself and would hold the drain open; the agent's new replica follows it.
  const stop = (): void => {
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  link.once('draining', stop);
  stream.once('close', () => {
    link.off('draining', stop);
    if (link.closed || link.draining) return;
    const delay = ok ? RETRY_MIN_MS : Math.min(RETRY_MIN_MS * 2 ** failures, RETRY_MAX_MS);
    setTimeout(() => followAgentLines(link, feed, ok ? 0 : failures + 1), delay).unref();
  });
}
