/**
 * The detail page's "Resource use" card: loads the charts (stats-chart.tsx) as a lazy chunk, so
 * the first load of the UI carries none of their code.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

type Charts = (props: { node: string; id: string }) => JSX.Element;

let loading: Promise<Charts> | null = null;

export function StatsSection({ node, id }: { node: string; id: string }): JSX.Element {
  const [Charts, setCharts] = useState<Charts | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let live = true;
    loading ??= import('./stats-chart.tsx').then((m) => m.default);
    loading.then(
      (c) => live && setCharts(() => c),
      () => {
        loading = null;
        if (live) setFailed(true);
      },
    );
    return () => void (live = false);
  }, []);
  return (
    <section class="card span-2">
      <h2 class="card-title">Resource use</h2>
      {Charts ? <Charts node={node} id={id} /> : <p class="muted">{failed ? 'The charts could not be loaded; reload the page to try again.' : 'Loading charts…'}</p>}
    </section>
  );
}
