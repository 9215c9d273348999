/**
 * The agent host's own CPU and memory, read from /proc on the host the agent runs on (the
 * engine's host in every supported setup): CPU busy share from two readings of /proc/stat,
 * memory as MemTotal − MemAvailable from /proc/meminfo. Off Linux it reports nothing.
 */
import { readFile } from 'node:fs/promises';
import type { HostPoint } from '../../protocol/stats.ts';

interface CpuTimes {
  busy: number;
  total: number;
  cpus: number;
}

export function parseProcStat(text: string): CpuTimes | null {
  const lines = text.split('\n');
  const all = lines.find((l) => l.startsWith('cpu '));
  if (!all) return null;
  const f = all.trim().split(/\s+/).slice(1).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, cpus: lines.filter((l) => /^cpu\d+ /.test(l)).length };
}

export function parseMeminfo(text: string): { used: number; total: number } | null {
  const kib = (key: string): number | null => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const total = kib('MemTotal');
  const available = kib('MemAvailable');
  return total === null || available === null ? null : { used: Math.max(0, total - available), total };
}

export class HostUsage {
  #before: CpuTimes | null = null;

  /** The use since the previous call (CPU 0 on the first); null where /proc is not readable. */
  async sample(): Promise<HostPoint | null> {
    try {
      const [stat, meminfo] = await Promise.all([readFile('/proc/stat', 'utf8'), readFile('/proc/meminfo', 'utf8')]);
      const now = parseProcStat(stat);
      const mem = parseMeminfo(meminfo);
      if (!now || !mem) return null;
      const before = this.#before;
      this.#before = now;
      const total = before ? now.total - before.total : 0;
      const cpuPercent = before && total > 0 ? ((now.busy - before.busy) / total) * 100 : 0;
      return { cpuPercent: Math.round(Math.max(0, cpuPercent) * 10) / 10, cpus: now.cpus, memUsed: mem.used, memTotal: mem.total };
    } catch {
      return null;
    }
  }

  reset(): void {
    this.#before = null;
  }
}
