/**
 * Pure arithmetic from two of the engine's stats answers (GET /containers/ID/stats) to one
 * point, the way `docker stats` computes it: CPU is the container's CPU time delta over the
 * host's system CPU delta times the online CPUs; memory is usage minus the inactive page cache;
 * network and block I/O are byte-counter deltas over the elapsed time. Foreign input: every field
 * is read defensively, and a counter that went backwards (container restarted) counts as zero.
 */
import type { ContainerPoint } from '../../protocol/stats.ts';

/** The few fields of the engine's stats JSON this reads. */
export interface EngineStats {
  read?: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null }; system_cpu_usage?: number; online_cpus?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op?: string; value?: number }> | null };
}

/** The counters kept between two samples of one container. */
export interface Counters {
  atMs: number;
  cpuTotal: number;
  systemTotal: number;
  netRx: number;
  netTx: number;
  blkRead: number;
  blkWrite: number;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

export function countersOf(stats: EngineStats, atMs: number): Counters {
  let netRx = 0;
  let netTx = 0;
  for (const iface of Object.values(stats.networks ?? {})) {
    netRx += num(iface?.rx_bytes);
    netTx += num(iface?.tx_bytes);
  }
  let blkRead = 0;
  let blkWrite = 0;
  for (const entry of stats.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = (entry?.op ?? '').toLowerCase();
    if (op === 'read') blkRead += num(entry.value);
    else if (op === 'write') blkWrite += num(entry.value);
  }
  return {
    atMs,
    cpuTotal: num(stats.cpu_stats?.cpu_usage?.total_usage),
    systemTotal: num(stats.cpu_stats?.system_cpu_usage),
    netRx,
    netTx,
    blkRead,
    blkWrite,
  };
}

/** Memory in use without the reclaimable page cache (cgroup v2 `inactive_file`, v1 `total_inactive_file`). */
export function memoryUsage(stats: EngineStats): number {
  const usage = num(stats.memory_stats?.usage);
  const s = stats.memory_stats?.stats ?? {};
  const inactive = 'total_inactive_file' in s ? num(s.total_inactive_file) : num(s.inactive_file);
  return inactive < usage ? usage - inactive : usage;
}

export function onlineCpus(stats: EngineStats): number {
  const online = num(stats.cpu_stats?.online_cpus);
  return online > 0 ? online : (stats.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 0);
}

const delta = (now: number, before: number): number => (now >= before ? now - before : 0);

/** One point from this sample and the previous one (null before there is a previous one). */
export function pointOf(id: string, stats: EngineStats, now: Counters, before: Counters | null): ContainerPoint {
  const seconds = before ? Math.max(0.001, (now.atMs - before.atMs) / 1000) : 0;
  const rate = (a: number, b: number): number => (before ? delta(a, b) / seconds : 0);
  const systemDelta = before ? delta(now.systemTotal, before.systemTotal) : 0;
  const cpuDelta = before ? delta(now.cpuTotal, before.cpuTotal) : 0;
  const cpuPercent = systemDelta > 0 ? (cpuDelta / systemDelta) * onlineCpus(stats) * 100 : 0;
  return {
    id,
    cpuPercent: Math.round(cpuPercent * 10) / 10,
    memUsage: memoryUsage(stats),
    memLimit: num(stats.memory_stats?.limit),
    netRx: Math.round(rate(now.netRx, before?.netRx ?? 0)),
    netTx: Math.round(rate(now.netTx, before?.netTx ?? 0)),
    blkRead: Math.round(rate(now.blkRead, before?.blkRead ?? 0)),
    blkWrite: Math.round(rate(now.blkWrite, before?.blkWrite ?? 0)),
  };
}
