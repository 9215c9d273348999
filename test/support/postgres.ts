/** A private PostgreSQL server per test file: initdb into a temp dir, listening on 127.0.0.1 on a
 * free port and on a unix socket in that dir, password (scram) auth for a test role so every URL
 * carries a password, durability off for speed. PostgreSQL refuses to run as root, so when the
 * tests run as root the server runs as the `postgres` user (spawned with its uid and gid: the pid
 * we hold is the postmaster's own, and only that pid is ever signalled). `halt()` and `resume()`
 * stop the server and start it again on the same port and data dir (an outage, for the tests of
 * a hub whose database goes away). */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './processes.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
const ROLE = 'dockfleet_test';

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Why PostgreSQL tests cannot run here, or null. Under CI a missing server is a failure, not a skip. */
export function postgresMissing(): string | null {
  if (existsSync(join(PG_BIN, 'postgres')) && existsSync(join(PG_BIN, 'initdb'))) return null;
  const reason = `PostgreSQL 15 is not installed in ${PG_BIN} (apt-get install postgresql-15)`;
  if (process.env.CI) throw new Error(`CI needs PostgreSQL: ${reason}`);
  return reason;
}

export interface PostgresServer {
  /** postgres://dockfleet_test:<password>@127.0.0.1:<port>/postgres (the maintenance database). */
  readonly url: string;
  /** The directory holding the unix socket (host= for a socket connection). */
  readonly socketDir: string;
  readonly port: number;
  readonly password: string;
  /** Creates an empty database and returns its URL (same role and password). */
  freshDatabase(): Promise<string>;
  /** The server's output so far (for a failing test's message). */
  log(): string;
  /** Stops the server (fast shutdown: its clients are disconnected) but keeps its data dir. */
  halt(): Promise<void>;
  /** Starts it again on the same port and data dir, and waits until it answers. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresServer> {
  const missing = postgresMissing();
  if (missing) throw new Error(missing);
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-pg-'));
  const owner = runAs();
  try {
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const password = randomBytes(18).toString('base64url');
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    const data = join(dir, 'data');
    execFileSync(join(PG_BIN, 'initdb'), ['-D', data, '-U', ROLE, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--no-sync', '--encoding=UTF8', '--locale=C'], {
      stdio: 'pipe',
      ...(owner ?? {}),
      env: { ...process.env, LC_ALL: 'C' },
    });
    chmodSync(pwfile, 0o600);
    const port = await freePort();
    let output = '';
    let server = launch(data, port, dir, owner, (text) => (output += text));
    const url = `postgres://${ROLE}:${password}@127.0.0.1:${port}/postgres`;
    await waitReady(url, server.child, () => output);
    let databases = 0;
    return {
      url,
      socketDir: dir,
      port,
      password,
      log: () => output,
      async freshDatabase() {
        databases += 1;
        const name = `test_${process.pid}_${databases}`;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgres://${ROLE}:${password}@127.0.0.1:${port}/${name}`;
      },
      halt: () => server.halt(),
      async resume() {
        if (server.running()) return;
        server = launch(data, port, dir, owner, (text) => (output += text));
        await waitReady(url, server.child, () => output);
      },
      async stop() {
        await server.halt();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** One run of the postmaster on DATA; `halt` is a fast shutdown (clients disconnected, not waited for). */
function launch(data: string, port: number, dir: string, owner: { uid: number; gid: number } | null, onOutput: (text: string) => void) {
  const child = spawn(
    join(PG_BIN, 'postgres'),
    [
      '-D',
      data,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `port=${port}`,
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'shared_buffers=16MB',
      '-c',
      'max_connections=60',
      '-c',
      'logging_collector=off',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], ...(owner ?? {}) },
  );
  started.add(child);
  child.stdout!.on('data', (c: Buffer) => onOutput(c.toString()));
  child.stderr!.on('data', (c: Buffer) => onOutput(c.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      started.delete(child);
      resolve();
    }),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    running,
    async halt() {
      if (!running()) return;
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The postgres user's ids when we are root (PostgreSQL will not run as root), else null. */
function runAs(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited before it was ready: ${output().slice(-800)}`);
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres not ready in 30 s: ${output().slice(-800)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
