/**
 * Stacks drifting: each agent's stack status feed says, per stack, whether what runs still
 * matches the deployed revision. A stack reported `drifted` on a node raises a condition per
 * stack and node; any other state (or the stack gone from the node's report) clears it.
 */
import type { StacksStatusMessage } from '../../../protocol/stacks.ts';
import type { StackStatusFeed } from '../../jobs/stack-status-feed.ts';
import type { AlertSource, ConditionSink } from '../alert-source.ts';

const KIND = 'stack-drift';

function look(sink: ConditionSink, node: string, message: StacksStatusMessage): void {
  const holding = new Set<string>();
  for (const s of message.stacks) {
    if (s.state !== 'drifted') continue;
    const key = `${KIND}:${s.stack}:${node}`;
    holding.add(key);
    const what = s.drift
      .slice(0, 5)
      .map((d) => `${d.kind} ${d.service ?? d.container ?? ''}: ${d.detail}`.trim())
      .join('; ');
    sink.raise(KIND, {
      key,
      severity: 'warning',
      node,
      subject: s.stack,
      title: `Stack ${s.stack} drifted on ${node}`,
      detail: `Revision ${s.revision} no longer matches what runs${what ? `: ${what}` : ''}${s.drift.length > 5 ? ` (and ${s.drift.length - 5} more)` : ''}.`,
    });
  }
  // Keys end with the node, so another node's drift of the same stack is left alone.
  for (const key of sink.openKeys(`${KIND}:`).keys()) if (key.endsWith(`:${node}`) && !holding.has(key)) sink.clear(key);
}

/** Watches every node's stack status reports. */
export function stackDriftSource(feed: StackStatusFeed): AlertSource {
  return { kind: KIND, start: (sink) => feed.onStatus((node, message) => look(sink, node, message)) };
}
