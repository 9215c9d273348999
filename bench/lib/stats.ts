/** Small statistics helpers for the benches: nearest-rank percentiles over raw samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Summarises samples (any unit; rounded to 3 decimals). */
export function summarize(samples: readonly number[]): LatencySummary {
  const r = (n: number): number => Math.round(n * 1000) / 1000;
  const mean = samples.length === 0 ? Number.NaN : samples.reduce((a, b) => a + b, 0) / samples.length;
  return {
    count: samples.length,
    p50: r(percentile(samples, 50)),
    p90: r(percentile(samples, 90)),
    p99: r(percentile(samples, 99)),
    max: r(percentile(samples, 100)),
    mean: r(mean),
  };
}
