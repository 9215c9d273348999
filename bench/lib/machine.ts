/** What a bench result was measured on: machine, kernel, Node, and the source it ran. */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { ROOT } from './dockfleet-procs.ts';

export function machineFacts(): Record<string, unknown> {
  let source: Record<string, unknown> = {};
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'bin').split('\n').filter(Boolean);
    source = { commit: git('rev-parse', 'HEAD'), uncommittedSrcFiles: dirty.length, uncommitted: dirty.map((l) => l.trim()) };
  } catch {
    if (process.env.BENCH_SOURCE) source = { description: process.env.BENCH_SOURCE };
  }
  let dockerd: string | null = null;
  try {
    dockerd = execFileSync('dockerd', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not installed
  }
  return {
    source,
    loadAverage1m5m15m: loadavg().map((x) => Math.round(x * 100) / 100),
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    memTotalBytes: totalmem(),
    node: process.version,
    kernel: release(),
    dockerd,
  };
}
