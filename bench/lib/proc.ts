/**
 * Child processes for benches: spawn with line-wise output, kill only what we started (by pid,
 * also when the bench dies), and read a process's RSS and CPU time from /proc.
 */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const live = new Set<ChildProcess>();
let hooked = false;

function killAllSync(): void {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAllSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** The last lines of stderr, for failure reports. */
  tail(): string[];
  /** Resolves with the first stdout line matching `re` (and the time it arrived). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<{ line: string; at: number }>;
  onLine(fn: (line: string, at: number) => void): void;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after `graceMs`. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

export function startChild(name: string, command: string, args: string[], opts: SpawnOptions = {}): Child {
  hookExit();
  const proc = spawn(command, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`could not start ${name}`);
  live.add(proc);
  const stderrTail: string[] = [];
  const listeners: Array<(line: string, at: number) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const at = Date.now();
    for (const l of [...listeners]) l(line, at);
  });
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 40) stderrTail.shift();
  });
  proc.stdin!.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid!, signal);
      } catch {
        // already gone
      }
    }
  };
  return {
    proc,
    pid: proc.pid,
    name,
    tail: () => [...stderrTail],
    onLine: (fn) => void listeners.push(fn),
    waitForLine(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; stderr tail:\n${stderrTail.slice(-10).join('\n')}`));
        }, timeoutMs);
        const onExit = (): void => {
          done();
          reject(new Error(`${name} exited before printing ${re}; stderr tail:\n${stderrTail.slice(-10).join('\n')}`));
        };
        const listener = (line: string, at: number): void => {
          if (!re.test(line)) return;
          done();
          resolve({ line, at });
        };
        const done = (): void => {
          clearTimeout(timer);
          proc.off('exit', onExit);
          const i = listeners.indexOf(listener);
          if (i >= 0) listeners.splice(i, 1);
        };
        listeners.push(listener);
        proc.once('exit', onExit);
      });
    },
    exited,
    kill,
    async stop(graceMs = 5_000) {
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port that was free a moment ago (listen on 0, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Resident set size in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Peak RSS in bytes (VmHWM). */
export function peakRssBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

let clkTck: number | null = null;
function ticksPerSecond(): number {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** User and system CPU seconds a process has used so far (/proc/PID/stat fields 14 and 15). */
export function cpuSeconds(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields after it start past the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const hz = ticksPerSecond();
  return { user: Number(fields[11]) / hz, system: Number(fields[12]) / hz };
}

/** User plus system CPU seconds of `pid` so far. */
export function cpuTotalSeconds(pid: number): number {
  const c = cpuSeconds(pid);
  return c.user + c.system;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
