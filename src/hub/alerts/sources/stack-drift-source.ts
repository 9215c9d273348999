/**
 * Stacks drifting: each agent's stack status feed says, per stack, whether what runs still
 * matches the deployed revision. A stack reported `drifted` on a node raises a condition per
 * stack and node; any other state (or the stack gone from the node's report) clears it.
 */
import type { StacksStatusMessage } from '../../../protocol/stacks.ts';
import type { StackStatusFeed } from '../../jobs/stack-status-feed.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'stack-drift';

export class StackDriftSource implements AlertSource {
  readonly kind = KIND;
  readonly #feed: StackStatusFeed;

  constructor(feed: StackStatusFeed) {
    this.#feed = feed;
  }

  start(sink: ConditionSink): () => void {
    return this.#feed.onStatus((node, message) => this.#look(sink, node, message));
  }

  #look(sink: ConditionSink, node: string, message: StacksStatusMessage): void {
    const holding = new Set<string>();
    for (const s of message.stacks) {
      if (s.state !== 'drifted') continue;
      const key = `${KIND}:${s.stack}:${node}`;
      holding.add(key);
      const what = s.drift.slice(0, 5).map((d) => `${d.kind} ${d.service ?? d.container ?? ''}: ${d.detail}`.trim()).join('; ');
      sink.raise(KIND, {
        key, severity: 'warning', node, subject: s.stack,
        title: `Stack ${s.stack} drifted on ${node}`,
        detail: `Revision ${s.revision} no longer matches what runs${what ? `: ${what}` : ''}${s.drift.length > 5 ? ` (and ${s.drift.length - 5} more)` : ''}.`,
      });
    }
    // Keys end with the node, so another node's drift of the same stack is left alone.
    for (const key of sink.openKeys(`${KIND}:`).keys()) if (key.endsWith(`:${node}`) && !holding.has(key)) sink.clear(key);
  }
}
