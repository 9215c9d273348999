/**
 * Connection flood against a real `dockfleet hub` process: the hub's RSS before, during and 30 s
 * after 10,000 idle TLS connections (handshake, then silence) and 2,000 trickling request bodies
 * (one byte every 10 s, under the 30 s stall limit, so the hub must hold them), beside a baseline
 * flood of the same size answered normally (each connection: GET /healthz, then close).
 * Clients are child processes of this file (`client` mode) on source addresses 127.0.0.2…, so
 * the hub's per-address cap (256) is not what turns them away. Writes
 * bench/results/connection-flood.json.
 *
 * Knobs (env): BENCH_IDLE=10000 BENCH_TRICKLE=2000 BENCH_PER_ADDRESS=200 BENCH_AFTER_MS=30000
 */
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { startHubProcess } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { freePort, peakRssBytes, rssBytes, sleep } from './lib/proc.ts';
import { removeHubData } from '../test/support/hub-fixture.ts';

type Mode = 'idle' | 'trickle' | 'healthz';

// ---- client mode: one process holding many connections, driven by lines on stdin/stdout ----
async function client(mode: Mode, port: number, count: number, firstAddress: number, perAddress: number): Promise<void> {
  const sockets = new Set<tls.TLSSocket>();
  let opened = 0;
  let failed = 0;
  let closedByHub = 0;
  let leaving = false;
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const open = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const localAddress = `127.0.0.${firstAddress + Math.floor(i / perAddress)}`;
      // localAddress goes on to net.connect (tls's option type leaves it out).
      const socket = tls.connect({ host: '127.0.0.1', port, localAddress, rejectUnauthorized: false } as tls.ConnectionOptions);
      socket.on('error', () => {});
      socket.on('data', () => {});
      let secured = false;
      socket.once('secureConnect', () => {
        secured = true;
        opened++;
        if (mode === 'healthz') {
          socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
        } else if (mode === 'trickle') {
          socket.write('POST /api/v1/enroll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{');
          const timer = setInterval(() => socket.write(' '), 10_000);
          socket.once('close', () => clearInterval(timer));
        }
        sockets.add(socket);
        if (mode !== 'healthz') resolve();
      });
      socket.once('close', () => {
        sockets.delete(socket);
        if (!secured) failed++;
        else if (!leaving && mode !== 'healthz') closedByHub++;
        resolve();
      });
    });
  const t0 = Date.now();
  const inFlight = 64;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) await open(next++);
    }),
  );
  say(`opened ${JSON.stringify({ opened, failed, openNow: sockets.size, ms: Date.now() - t0 })}`);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'status') say(`status ${JSON.stringify({ opened, failed, closedByHub, openNow: sockets.size })}`);
    if (line === 'leave') {
      leaving = true;
      for (const s of sockets) s.destroy();
      say(`left ${JSON.stringify({ opened, failed, closedByHub })}`);
      process.exit(0);
    }
  }
}

// ---- bench mode ----
interface FloodClient {
  ready: Promise<Record<string, number>>;
  ask(line: string, reply: string): Promise<Record<string, number>>;
}

function startClient(mode: Mode, port: number, count: number, firstAddress: number, perAddress: number): FloodClient {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'client', mode, String(port), String(count), String(firstAddress), String(perAddress)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting: Array<{ prefix: string; resolve: (v: Record<string, number>) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const i = waiting.findIndex((w) => line.startsWith(`${w.prefix} `));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(JSON.parse(line.slice(line.indexOf(' ') + 1)));
  });
  const expect = (prefix: string): Promise<Record<string, number>> => new Promise((resolve) => waiting.push({ prefix, resolve }));
  return {
    ready: expect('opened'),
    ask(line, reply) {
      const answer = expect(reply);
      child.stdin!.write(`${line}\n`);
      return answer;
    },
  };
}

const MB = 1024 * 1024;
const mb = (bytes: number): number => Math.round(bytes / MB);

async function flood(pid: number, port: number, parts: Array<{ mode: Mode; count: number }>, perAddress: number, afterMs: number): Promise<Record<string, unknown>> {
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => void (peak = Math.max(peak, rssBytes(pid))), 250);
  const t0 = Date.now();
  let firstAddress = 2;
  const clients: Array<{ mode: Mode; count: number; client: FloodClient }> = [];
  for (const { mode, count } of parts) {
    // Several processes per part: one process's TLS work would otherwise set the pace.
    const procs = Math.max(1, Math.ceil(count / 5_000));
    for (let p = 0; p < procs; p++) {
      const n = Math.ceil(count / procs);
      clients.push({ mode, count: n, client: startClient(mode, port, n, firstAddress, perAddress) });
      firstAddress += Math.ceil(n / perAddress);
    }
  }
  const opened = await Promise.all(clients.map((c) => c.client.ready));
  const openMs = Date.now() - t0;
  const during = rssBytes(pid);
  await sleep(2_000);
  const status = await Promise.all(clients.map((c) => c.client.ask('status', 'status')));
  const held = rssBytes(pid);
  const left = await Promise.all(clients.map((c) => c.client.ask('leave', 'left')));
  await sleep(afterMs);
  clearInterval(sampler);
  const after = rssBytes(pid);
  const sum = (rows: Array<Record<string, number>>, key: string): number => rows.reduce((a, r) => a + (r[key] ?? 0), 0);
  return {
    parts,
    sourceAddresses: firstAddress - 2,
    openMs,
    connections: { opened: sum(opened, 'opened'), failed: sum(opened, 'failed'), openAfter2s: sum(status, 'openNow'), closedByHubBeforeLeaving: sum(left, 'closedByHub') },
    rssMB: { before: mb(before), whenAllOpened: mb(during), twoSecondsLater: mb(held), peak: mb(peak), [`${afterMs / 1000}sAfter`]: mb(after) },
  };
}

async function main(): Promise<void> {
  const IDLE = envInt('BENCH_IDLE', 10_000);
  const TRICKLE = envInt('BENCH_TRICKLE', 2_000);
  const PER_ADDRESS = envInt('BENCH_PER_ADDRESS', 200);
  const AFTER_MS = envInt('BENCH_AFTER_MS', 30_000);
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-bench-flood-'));
  const port = await freePort();
  const hub = await startHubProcess(dataDir, `127.0.0.1:${port}`);
  try {
    await sleep(3_000);
    const idleAtStart = mb(rssBytes(hub.child.pid));
    console.log(`hub idle: ${idleAtStart} MB RSS`);
    const baseline = await flood(hub.child.pid, port, [{ mode: 'healthz', count: IDLE + TRICKLE }], PER_ADDRESS, AFTER_MS);
    console.log('healthz flood', JSON.stringify(baseline));
    const held = await flood(
      hub.child.pid,
      port,
      [
        { mode: 'idle', count: IDLE },
        { mode: 'trickle', count: TRICKLE },
      ],
      PER_ADDRESS,
      AFTER_MS,
    );
    console.log('idle + trickle flood', JSON.stringify(held));
    const result = {
      bench: 'connection-flood',
      at: new Date().toISOString(),
      machine: machineFacts(),
      config: { idle: IDLE, trickle: TRICKLE, connectionsPerSourceAddress: PER_ADDRESS, afterMs: AFTER_MS, hubLimits: 'defaults (handshake 10 s, head 30 s, body stall 30 s, 256 per address)' },
      hubIdleRssMB: idleAtStart,
      baselineHealthz: baseline,
      idleAndTrickle: held,
      hubPeakRssMB: mb(peakRssBytes(hub.child.pid)),
    };
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'connection-flood.json');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${out}`);
  } finally {
    await hub.child.stop();
    await removeHubData(dataDir);
  }
}

if (process.argv[2] === 'client') {
  const [, , , mode, port, count, first, per] = process.argv;
  await client(mode as Mode, Number(port), Number(count), Number(first), Number(per));
} else {
  await main();
}
