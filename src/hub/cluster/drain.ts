/**
 * A replica shutting down hands its agents over first (issue 17): its gateway takes no new agent
 * links, each linked agent is told to move (GOAWAY with reason `draining` and the replicas to
 * dial, this one left out) and dials another replica at once, while the calls already in flight
 * on the old link go on until they end, up to `timeoutMs`; then the rest are cut. New calls for
 * those agents meanwhile fail fast as node offline here, and go to their new holder.
 */
import type { AgentGateway } from '../gateway/agent-gateway.ts';

/** How long calls in flight may take to end before a draining replica cuts them. */
export const DRAIN_TIMEOUT_MS = 30_000;

export interface DrainResult {
  /** Agents told to move. */
  moved: number;
  /** Of those, links still busy at the deadline and cut. */
  cut: number;
  ms: number;
}

/** `selfUrl`: this replica's agent-facing URL, left out of the list its agents are handed. */
export async function drain(gateway: AgentGateway, timeoutMs = DRAIN_TIMEOUT_MS, selfUrl?: string): Promise<DrainResult> {
  const started = Date.now();
  const { links, replicas } = gateway.beginDrain(selfUrl);
  let cut = 0;
  await Promise.all(
    links.map(async (link) => {
      const deadline = setTimeout(() => void cut++, timeoutMs);
      try {
        await link.drain({ t: 'move', reason: 'draining', replicas }, timeoutMs);
      } finally {
        clearTimeout(deadline);
      }
    }),
  );
  return { moved: links.length, cut, ms: Date.now() - started };
}
