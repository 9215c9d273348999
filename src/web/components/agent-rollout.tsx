/** The latest agent upgrade rollout (issue 16), on the nodes page: its waves, each a group of its
 * nodes with their state and, when one failed, why on a line of its own. Polled while the page is open; nothing is shown before the first rollout. */
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
  const waves = [...new Set(latest.nodes.map((n) => n.wave))].sort((a, b) => a - b);
  return (
    <section class="card" aria-labelledby="agent-rollout-title">
      <h2 id="agent-rollout-title" class="small">
        Agent upgrade to {latest.to} <StatusBadge status={latest.state} />
      </h2>
      {waves.map((wave) => (
        <div key={wave} role="group" aria-labelledby={`agent-rollout-wave-${wave}`}>
          <h3 id={`agent-rollout-wave-${wave}`} class="small muted">
            Wave {wave}
          </h3>
          <ul class="small">
            {latest.nodes
              .filter((n) => n.wave === wave)
              .map((n) => (
                <li key={n.node}>
                  {n.node} <StatusBadge status={n.state} />
                  {n.from ? ` from ${n.from}` : ''}
                  {n.reason && <div class={n.state === 'failed' ? 'bad-text' : 'muted'}>{n.reason}</div>}
                </li>
              ))}
          </ul>
        </div>
      ))}
    </section>
  );
}
