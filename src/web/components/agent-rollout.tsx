/** The latest agent upgrade rollout (issue 16), on the nodes page: each node's wave, state and,
 * when it failed, why. Polled while the page is open; nothing is shown before the first rollout. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { RolloutView } from '../../protocol/releases.ts';
import { get } from '../lib/api.ts';
import { StatusBadge } from './ui.tsx';

const POLL_MS = 5_000;

export function AgentRollout(): JSX.Element | null {
  const [latest, setLatest] = useState<RolloutView | null>(null);
  useEffect(() => {
    let live = true;
    const load = (): void => {
      get<RolloutView[]>('/api/v1/agent-upgrades').then(
        (list) => live && setLatest(list[0] ?? null),
        () => {},
      );
    };
    load();
    const timer = setInterval(load, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  if (!latest) return null;
  return (
    <section class="card" aria-labelledby="agent-rollout-title">
      <h2 id="agent-rollout-title" class="small">
        Agent upgrade to {latest.to} <StatusBadge status={latest.state} />
      </h2>
      <ul class="small">
        {latest.nodes.map((n) => (
          <li key={n.node}>
            wave {n.wave} · {n.node} · {n.state}
            {n.from ? ` (from ${n.from})` : ''}
            {n.reason ? `: ${n.reason}` : ''}
          </li>
        ))}
      </ul>
    </section>
  );
}
