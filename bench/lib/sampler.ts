/**
 * Periodic /proc samples of processes while something runs: RSS (VmRSS) every `everyMs`, and the
 * CPU time each used over the whole window.
 */
import { cpuSeconds, rssBytes } from './proc.ts';

export interface ProcWindow {
  /** RSS samples in bytes, one every `everyMs`. */
  rss: number[];
  peakRss: number;
  /** CPU seconds (user + system) used during the window. */
  cpuS: number;
  /** That, in % of one core over the window. */
  cpuPercent: number;
}

export interface Sampler {
  stop(): Record<string, ProcWindow>;
}

export function startSampler(pids: Record<string, number>, everyMs = 100): Sampler {
  const names = Object.keys(pids);
  const rss: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const cpu0 = Object.fromEntries(names.map((n) => [n, safeCpu(pids[n]!)]));
  const t0 = process.hrtime.bigint();
  const sample = (): void => {
    for (const n of names) {
      try {
        rss[n]!.push(rssBytes(pids[n]!));
      } catch {
        // the process is gone; the caller will notice
      }
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const out: Record<string, ProcWindow> = {};
      for (const n of names) {
        const cpuS = safeCpu(pids[n]!) - cpu0[n]!;
        out[n] = {
          rss: rss[n]!,
          peakRss: Math.max(...rss[n]!),
          cpuS: Math.round(cpuS * 100) / 100,
          cpuPercent: Math.round((cpuS / seconds) * 1000) / 10,
        };
      }
      return out;
    },
  };
}

function safeCpu(pid: number): number {
  try {
    const { user, system } = cpuSeconds(pid);
    return user + system;
  } catch {
    return Number.NaN;
  }
}
