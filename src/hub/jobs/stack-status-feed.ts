/**
 * The hub's end of each agent's stack status stream (`GET STACKS_STATUS_PATH`, NDJSON
 * `stacksStatusMessage`s), opened on every link as the inventory stream is. Each message goes
 * to the handlers the stack service registers. A malformed line is skipped; a stream that
 * ends while the link is up is opened again (at growing intervals if the agent refuses it,
 * e.g. an agent without stacks answers 404).
 */
import http2 from 'node:http2';
import { STACKS_STATUS_PATH, stacksStatusMessage, type StacksStatusMessage } from '../../protocol/stacks.ts';
import { LineTooLongError, NdjsonSplitter, parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { NodeRegistry } from '../node-registry.ts';

export type StacksStatusHandler = (node: string, message: StacksStatusMessage) => void;

const MAX_LINE = 4 * 1024 * 1024;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export class StackStatusFeed {
  readonly #log: Logger;
  readonly #handlers = new Set<StacksStatusHandler>();

  constructor(registry: NodeRegistry, log: Logger) {
    this.#log = log;
    registry.on('linked', (link) => this.#follow(link, 0));
  }

  /** Registers a handler for every node's messages; returns a function that removes it. */
  onStatus(handler: StacksStatusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #follow(link: AgentLink, failures: number): void {
    if (link.closed) return;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = link.openStream({ ':method': 'GET', ':path': STACKS_STATUS_PATH }, { endStream: true });
    } catch {
      return;
    }
    const splitter = new NdjsonSplitter(MAX_LINE);
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
        this.#log.warn({ node: link.nodeName }, 'stack status line too long; reopening the stream');
        ok = false;
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return;
      }
      for (const line of lines) this.#accept(link, line);
    });
    stream.on('error', () => {});
    stream.once('close', () => {
      if (link.closed) return;
      const next = ok ? 0 : failures + 1;
      const delay = ok ? RETRY_MIN_MS : Math.min(RETRY_MIN_MS * 2 ** failures, RETRY_MAX_MS);
      setTimeout(() => this.#follow(link, next), delay).unref();
    });
  }

  #accept(link: AgentLink, line: string): void {
    if (link.closed) return;
    const parsed = parseJsonLine(line);
    const message = parsed.ok ? stacksStatusMessage.safeParse(parsed.value) : null;
    if (!message?.success) {
      this.#log.warn({ node: link.nodeName }, 'ignored a malformed stack status message');
      return;
    }
    for (const handler of this.#handlers) {
      try {
        handler(link.nodeName, message.data);
      } catch (err) {
        // Whatever an agent sends, it must not take the hub down with it.
        this.#log.error({ err, node: link.nodeName }, 'stack status handler failed');
      }
    }
  }
}
