/**
 * The hub's end of each agent's stack status stream (`GET STACKS_STATUS_PATH`, NDJSON
 * `stacksStatusMessage`s), opened on every link as the inventory stream is. Each message goes
 * to the handlers the stack service registers. A malformed line is skipped; a stream that
 * ends while the link is up is opened again (at growing intervals if the agent refuses it,
 * e.g. an agent without stacks answers 404).
 */
import { STACKS_STATUS_PATH, stacksStatusMessage, type StacksStatusMessage } from '../../protocol/stacks.ts';
import { parseJsonLine } from '../../lib/ndjson.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentLink } from '../gateway/agent-link.ts';
import { followAgentLines } from '../gateway/follow-agent-lines.ts';
import type { NodeRegistry } from '../node-registry.ts';

export type StacksStatusHandler = (node: string, message: StacksStatusMessage) => void;

const MAX_LINE = 4 * 1024 * 1024;

export class StackStatusFeed {
  readonly #log: Logger;
  readonly #handlers = new Set<StacksStatusHandler>();

  constructor(registry: NodeRegistry, log: Logger) {
    this.#log = log;
    registry.on('linked', (link) => this.#follow(link));
  }

  /** Registers a handler for every node's messages; returns a function that removes it. */
  onStatus(handler: StacksStatusHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #follow(link: AgentLink): void {
    followAgentLines(link, { path: STACKS_STATUS_PATH, maxLine: MAX_LINE, what: 'stack status', log: this.#log, onLine: (l, line) => this.#accept(l, line) });
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
