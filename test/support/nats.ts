/** A private NATS server for tests: Debian's `nats-server` with JetStream, on 127.0.0.1 and a free
 * port, its store in a temp dir. `stop()` ends it cleanly, `kill()` with SIGKILL (a crash), and
 * `restart()` brings it back on the same port and store (for "NATS down, then back"). Only the
 * process started here is signalled, by its pid; the temp dir goes at `close()` or process exit. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes.ts';

export const NATS_SERVER = '/usr/sbin/nats-server';

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
process.once('exit', () => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Why NATS tests cannot run here, or null. Under CI a missing nats-server is a failure, not a skip. */
export function natsMissing(): string | null {
  if (existsSync(NATS_SERVER)) return null;
  const reason = `${NATS_SERVER} not installed (apt-get install nats-server)`;
  if (process.env.CI) throw new Error(`CI needs nats-server: ${reason}`);
  return reason;
}

export interface TestNats {
  readonly url: string;
  readonly port: number;
  /** Ends the server with SIGTERM and waits for it (clients see a disconnect). */
  stop(): Promise<void>;
  /** Ends the server with SIGKILL (a crash: nothing flushed, sockets reset). */
  kill(): Promise<void>;
  /** Starts it again (after stop or kill) on the same port and JetStream store — or, with
   * `wipeStore`, an empty one (a server replaced, its data lost). */
  restart(opts?: { wipeStore?: boolean }): Promise<void>;
  /** What the server printed so far (for a failing test's message). */
  log(): string;
  /** Stops it and removes its store. */
  close(): Promise<void>;
}

export async function startNats(): Promise<TestNats> {
  const missing = natsMissing();
  if (missing) throw new Error(missing);
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-nats-'));
  dirs.add(dir);
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = '';
  let closed = false;

  const launch = async (): Promise<void> => {
    // A test cancelled at its deadline can still reach its `finally` after the file's teardown
    // closed the server: starting it again then would outlive the file.
    if (closed) throw new Error('nats-server was closed; it is not started again');
    const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'store'), '-n', `test-${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(proc);
    child = proc;
    exited = new Promise<void>((resolve) =>
      proc.once('exit', () => {
        running.delete(proc);
        resolve();
      }),
    );
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 10_000;
    // Ready when the client port answers and JetStream said it is up.
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`nats-server exited at start: ${output.slice(-800)}`);
      if (/Server is ready/.test(output) && (await portOpen(port))) return;
      if (Date.now() > deadline) throw new Error(`nats-server did not become ready: ${output.slice(-800)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    async restart(opts = {}) {
      await end('SIGTERM');
      if (opts.wipeStore) await rm(join(dir, 'store'), { recursive: true, force: true });
      output += '\n--- restart ---\n';
      await launch();
    },
    log: () => output,
    async close() {
      closed = true;
      await end('SIGTERM');
      await rm(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A TCP relay in front of one replica's NATS connection, so a test can cut that replica off the
 * bus alone (a partition) while the others stay connected. */
export interface BusCut {
  readonly url: string;
  /** Resets every relayed connection and refuses new ones. */
  cut(): Promise<void>;
  /** Accepts connections again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startBusCut(targetPort: number): Promise<BusCut> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const srv = createServer((inbound) => {
        const outbound = connect(targetPort, '127.0.0.1');
        for (const s of [inbound, outbound]) {
          sockets.add(s);
          s.once('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        inbound.pipe(outbound).pipe(inbound);
        inbound.once('close', () => outbound.destroy());
        outbound.once('close', () => inbound.destroy());
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
      server = srv;
    });
  const stop = async (): Promise<void> => {
    const srv = server;
    server = null;
    for (const s of sockets) s.resetAndDestroy();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };
  await listen();
  return { url: `nats://127.0.0.1:${port}`, cut: stop, restore: listen, close: stop };
}
