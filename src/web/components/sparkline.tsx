/**
 * A container's CPU as a tiny inline SVG line (no chart library), with its latest value beside
 * it. It watches the container's stats only while it is on screen (IntersectionObserver), so a
 * long list streams only the rows someone can see. HostUse does the same for a node card.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { useStore } from '../lib/store.ts';
import { bytes } from '../lib/format.ts';
import { containerKey, hostKey, statsPoints, watchStats, type ContainerPoint, type HostPoint } from '../lib/stats.ts';

const W = 64;
const H = 18;

/** Watches `key` while `ref`'s element is visible. */
export function useVisibleStats(ref: { current: Element | null }, key: string | null): void {
  const [visible, setVisible] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el || typeof IntersectionObserver === 'undefined') return setVisible(true);
    const io = new IntersectionObserver((entries) => setVisible(entries.some((e) => e.isIntersecting)));
    io.observe(el);
    return () => io.disconnect();
  }, [ref.current]);
  useEffect(() => (visible && key ? watchStats(key) : undefined), [visible, key]);
}

export function sparkPath(values: readonly number[], max: number, w = W, h = H): string {
  if (values.length < 2) return '';
  const step = w / (values.length - 1);
  return values.map((v, i) => `${(i * step).toFixed(1)},${(h - 1 - (Math.min(v, max) / max) * (h - 2)).toFixed(1)}`).join(' ');
}

export function Sparkline({ node, id, name }: { node: string; id: string; name: string }) {
  const ref = useRef<HTMLSpanElement>(null);
  const key = containerKey(node, id);
  useVisibleStats(ref, key);
  const points = (useStore(statsPoints).get(key) ?? []) as ContainerPoint[];
  const values = points.map((p) => p.cpuPercent);
  const last = values.at(-1);
  const max = Math.max(100, ...values);
  return (
    <span ref={ref} class="sparkline" data-stats={key} title={last === undefined ? undefined : `CPU ${last.toFixed(1)} %`}>
      <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} aria-hidden="true" focusable="false">
        <polyline points={sparkPath(values, max)} fill="none" stroke="currentColor" stroke-width="1.5" />
      </svg>
      {/* The label sits beside the value, not in it: .sparkline-value holds the number alone. */}
      <span class="sr-only">{`CPU of ${name}: `}</span>
      <span class="sparkline-value">{last === undefined ? '–' : `${last.toFixed(0)}%`}</span>
    </span>
  );
}

/** A node's current CPU and memory (the agent reads /proc on its host), watched while on screen. */
export function HostUse({ node }: { node: string }) {
  const ref = useRef<HTMLSpanElement>(null);
  const key = hostKey(node);
  useVisibleStats(ref, key);
  const last = (useStore(statsPoints).get(key) ?? []).at(-1) as HostPoint | undefined;
  const mem = last && last.memTotal > 0 ? (last.memUsed / last.memTotal) * 100 : null;
  return (
    <span ref={ref} class="host-use" data-host-use={node}>
      {last ? `CPU ${last.cpuPercent.toFixed(0)} % · memory ${mem === null ? '—' : `${mem.toFixed(0)} %`} (${bytes(last.memUsed)} of ${bytes(last.memTotal)})` : '…'}
    </span>
  );
}
