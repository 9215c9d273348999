/**
 * The detail page's charts (a lazy chunk: loaded only when a container page opens): CPU,
 * memory, network and block I/O over the last minute, drawn as plain SVG with axis labels and
 * a text summary for screen readers. Watches the container while the page shows it.
 */
import { useRef } from 'preact/hooks';
import { bytes } from '../lib/format.ts';
import { useStore } from '../lib/store.ts';
import { containerKey, statsPoints, type ContainerPoint } from '../lib/stats.ts';
import { useVisibleStats } from './sparkline.tsx';

const W = 280;
const H = 90;

interface Series {
  label: string;
  values: number[];
  className: string;
}

function Chart({ title, series, max, format }: { title: string; series: Series[]; max: number; format: (n: number) => string }) {
  // `max` is the least scale (100 % for CPU, 1 KB/s for a rate), so an idle chart reads "max 1.0 KB/s", not 1e-9.
  const top = Math.max(max, ...series.flatMap((s) => s.values));
  const path = (values: number[]): string => {
    const step = values.length > 1 ? W / (values.length - 1) : W;
    return values.map((v, i) => `${(i * step).toFixed(1)},${(H - 2 - (v / top) * (H - 4)).toFixed(1)}`).join(' ');
  };
  const summary = series.map((s) => `${s.label} ${s.values.length ? format(s.values.at(-1)!) : 'no data yet'}`).join(', ');
  return (
    <figure class="stats-chart">
      <figcaption>
        <strong>{title}</strong> <span class="muted">{summary}</span>
        {series.length > 1 && (
          <span class="muted">
            {' '}
            (solid: {series[0]!.label}, dashed: {series[1]!.label})
          </span>
        )}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" height={H} role="img" aria-label={`${title}: ${summary}; scale up to ${format(top)}`} preserveAspectRatio="none">
        <line x1="0" y1={H - 1} x2={W} y2={H - 1} stroke="currentColor" stroke-opacity="0.3" />
        {series.map((s) =>
          s.values.length > 1 ? (
            <polyline
              key={s.label}
              points={path(s.values)}
              fill="none"
              stroke="currentColor"
              stroke-width="1.5"
              vector-effect="non-scaling-stroke"
              {...(s.className === 'stats-line-b' ? { 'stroke-dasharray': '4 3' } : {})}
            />
          ) : null,
        )}
      </svg>
      <div class="muted stats-scale" aria-hidden="true">
        max {format(top)}
      </div>
    </figure>
  );
}

const rate = (n: number): string => `${bytes(n)}/s`;

export default function StatsCharts({ node, id }: { node: string; id: string }) {
  const ref = useRef<HTMLElement>(null);
  const key = containerKey(node, id);
  useVisibleStats(ref, key);
  const points = (useStore(statsPoints).get(key) ?? []) as ContainerPoint[];
  const col = (f: (p: ContainerPoint) => number): number[] => points.map(f);
  const limit = points.at(-1)?.memLimit ?? 0;
  return (
    <section ref={ref} class="stats-charts" aria-label="Resource use" data-stats-charts={key}>
      <Chart title="CPU" max={100} format={(n) => `${n.toFixed(1)} %`} series={[{ label: 'CPU', values: col((p) => p.cpuPercent), className: 'stats-line-a' }]} />
      <Chart title={limit ? `Memory (limit ${bytes(limit)})` : 'Memory'} max={1024 * 1024} format={bytes} series={[{ label: 'used', values: col((p) => p.memUsage), className: 'stats-line-a' }]} />
      <Chart
        title="Network"
        max={1024}
        format={rate}
        series={[
          { label: 'in', values: col((p) => p.netRx), className: 'stats-line-a' },
          { label: 'out', values: col((p) => p.netTx), className: 'stats-line-b' },
        ]}
      />
      <Chart
        title="Block I/O"
        max={1024}
        format={rate}
        series={[
          { label: 'read', values: col((p) => p.blkRead), className: 'stats-line-a' },
          { label: 'write', values: col((p) => p.blkWrite), className: 'stats-line-b' },
        ]}
      />
    </section>
  );
}
