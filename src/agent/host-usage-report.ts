/**
 * What the agent reports of its host's use on the inventory stream, when the hub asks for it
 * (HOST_USAGE_QUERY): the CPU busy share over all CPUs since the previous report, from
 * /proc/stat time deltas, and available memory, /proc/meminfo's MemAvailable. Where /proc
 * cannot be read (not Linux) it falls back to os.cpus() times and os.freemem().
 */
import { readFile } from 'node:fs/promises';
import { cpus, freemem } from 'node:os';
import { HOST_USAGE_EVERY_MS, type HostUsageMessage } from '../protocol/inventory.ts';
import { parseMeminfo, parseProcStat } from './stats/host-usage.ts';

/** The report interval; DOCKFLEET_TEST_HOST_USAGE_MS shortens it for tests (at least 100 ms). */
export const HOST_USAGE_REPORT_MS = reportInterval(process.env.DOCKFLEET_TEST_HOST_USAGE_MS);

function reportInterval(raw: string | undefined): number {
  if (raw === undefined || raw === '') return HOST_USAGE_EVERY_MS;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100 || ms > HOST_USAGE_EVERY_MS) throw new Error(`DOCKFLEET_TEST_HOST_USAGE_MS must be 100–${HOST_USAGE_EVERY_MS} ms, got "${raw}"`);
  return ms;
}

interface CpuTimes {
  busy: number;
  total: number;
}

async function readCpuTimes(): Promise<CpuTimes> {
  const parsed = await readFile('/proc/stat', 'utf8').then(parseProcStat, () => null);
  if (parsed) return { busy: parsed.busy, total: parsed.total };
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}

async function readMemoryAvailable(): Promise<number> {
  const parsed = await readFile('/proc/meminfo', 'utf8').then(parseMeminfo, () => null);
  return parsed ? parsed.total - parsed.used : freemem();
}

/** One per inventory stream: each call reports the use since the previous one. */
export class HostUsageReport {
  #before: CpuTimes | null = null;

  /** Takes the first CPU reading, which the first report measures from. */
  async start(): Promise<void> {
    this.#before = await readCpuTimes();
  }

  async next(): Promise<HostUsageMessage> {
    const [now, available] = await Promise.all([readCpuTimes(), readMemoryAvailable()]);
    const before = this.#before;
    this.#before = now;
    const total = before ? now.total - before.total : 0;
    const message: HostUsageMessage = { t: 'hostUsage', memoryAvailableBytes: available };
    // No time passed between readings (or the counters went back): no CPU figure this time.
    if (before && total > 0) message.cpuBusyRatio = Math.min(1, Math.max(0, (now.busy - before.busy) / total));
    return message;
  }
}
