/** Real `dockfleet` processes for tests where the process boundary matters. Only processes
 * started here are ever signalled, by their pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/dockfleet.js', import.meta.url));
const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

export interface DockfleetProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern` that appears after `fromLine`. */
  waitForLine(pattern: RegExp, timeoutMs?: number, fromLine?: number): Promise<string>;
  lineCount(): number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export function spawnDockfleet(args: string[], env: NodeJS.ProcessEnv = {}): DockfleetProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, DOCKFLEET_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      started.delete(child);
      for (const w of waiters.splice(0)) w();
      resolve({ code, signal });
    }),
  );
  const lines = (): string[] => out.split('\n').filter((l) => l !== '');
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    lineCount: () => lines().length,
    exited,
    async waitForLine(pattern, timeoutMs = 15_000, fromLine = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines()
          .slice(fromLine)
          .find((l) => pattern.test(l));
        if (hit) return hit;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}; stderr: ${err.slice(-800)}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${pattern}; stdout: ${out.slice(-400)} stderr: ${err.slice(-800)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
    signal(sig) {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A free TCP port on 127.0.0.1 (for a hub that must come back on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
