/**
 * Simulated agents for fleet benches: each one enrolls through the hub's REST API with its own
 * Ed25519 key and keeps a REAL channel up (TLS → WebSocket → signed handshake → HTTP/2, with
 * runChannel's heartbeats and reconnect backoff). No Docker behind them: the tunnel answers the
 * no-op ping and serves a small, fixed inventory stream that stays open.
 *
 * As a library:   startSimulatedFleet({ hubUrl, caPem, token, count, namePrefix, concurrency })
 * As a process:   node --import tsx bench/agent-simulator.ts --hub URL --ca FILE --token T \
 *                   --count N --prefix P [--concurrency C] [--watch-stdin] \
 *                   [--docker-containers K] [--control-stdin]
 *   prints `enrolled N in MS ms`, then `simulated K connected` whenever K changes (and
 *   `stats connects=C drops=D` every 2 s when those moved; `heap=U/L MiB gc max=G ms` every 30 s,
 *   and at once after `lag max=N ms` when its own timers ran late); stops on SIGTERM/SIGINT
 *   (and, with --watch-stdin, when its stdin closes, i.e. when the parent died).
 *   --docker-containers K: GET /docker[/vX.Y]/containers/json answers a JSON array of K fake
 *   containers in the engine's list format (without it, Docker paths get 404 as before).
 *   --control-stdin: reads commands from stdin, one a line: `stall NAME[,NAME…]` makes those
 *   nodes stop answering Docker paths (requests are held, never answered; the channel and its
 *   heartbeats stay up), `unstall NAME[,NAME…]` undoes it; each is acknowledged on stdout with
 *   `stalled K` / `unstalled K` (K = nodes stalled now); `where NAME` answers `where NAME ORIGIN`
 *   (the hub its link is on, or `none`).
 *   --jobs: nodes answer stack jobs (lib/simulated-jobs.ts: `accepted` at once, `done` after
 *   --job-delay-ms D, default 0) and the stack status stream; each first delivery is printed as
 *   `job ID NODE SEEN_AT` (SEEN_AT: epoch ms, sub-ms precision). With --control-stdin,
 *   `job-delay MS` changes the delay (acknowledged with `job-delay MS`).
 *   --hubs URL,URL,…: hub replicas (issue 17): node i dials the i-th URL (mod their count) first
 *   and keeps the replica list the hub's welcome hands it, as a real agent does (in memory), so it
 *   moves on to another replica when its own dies or drains; prints `by-hub ORIGIN=K …` with the
 *   stats line. --docker-ping: GET /docker[/vX.Y]/_ping answers OK. --export-bytes B: GET
 *   /docker[/vX.Y]/containers/ID/export streams B bytes (a fake tar, with flow control).
 * Identities live in memory only, so a restarted hub sees the same nodes come back.
 * As a library, `upgrade: { releaseKey, restartMs }` makes nodes answer the agent upgrade endpoint
 * (lib/simulated-upgrade.ts: the release verified with the pinned key, then a restart of a fixed
 * time, back on the new version), and fleet.restart() restarts nodes the same way with no upgrade.
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { hostname } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parseArgs } from 'node:util';
import { runChannel, type ChannelIdentity } from '../src/agent/hub-channel.ts';
import { ReplicaList } from '../src/agent/replica-list.ts';
import type { TunnelHandler } from '../src/agent/tunnel-handler.ts';
import { Backoff, type BackoffOptions } from '../src/lib/backoff.ts';
import { silentLogger, type Logger } from '../src/lib/logger.ts';
import { HOST_USAGE_QUERY, INVENTORY_PATH, NOOP_PATH, type InventoryMessage } from '../src/protocol/inventory.ts';
import { generateNodeKey, keyIdOf, signWith } from '../src/protocol/node-keys.ts';
import { HubHttp, runPool } from './lib/hub-http.ts';
import { simulatedJobHandler, type JobHandler, type SimulatedJobsOptions } from './lib/simulated-jobs.ts';
import { simulatedUpgradeHandler, type SimulatedUpgradeOptions } from './lib/simulated-upgrade.ts';

export interface SimulatedFleetOptions {
  hubUrl: string | URL;
  caPem: string;
  /** Admin bearer token (mints one enrollment code per node). */
  token: string;
  count: number;
  /** Node names are `${namePrefix}-${i}` (lowercase letters, digits, dashes). */
  namePrefix: string;
  /** Enrollments, and dials (first connects and reconnects alike) in flight at once (default 32): a
   * reconnect storm of thousands in this one process would otherwise stall its event loop past the
   * heartbeat deadline, and the hubs would drop the agents that are linked. */
  concurrency?: number;
  log?: Logger;
  /** Called whenever the number of connected agents changes. */
  onChange?: (connected: number) => void;
  /** Fake containers each node lists on GET /docker[/vX.Y]/containers/json (default 0: 404). */
  dockerContainers?: number;
  /** Answer GET /docker[/vX.Y]/_ping with 200 OK (default false: 404). */
  dockerPing?: boolean;
  /** Stream this many bytes on GET /docker[/vX.Y]/containers/ID/export (default 0: 404). */
  exportBytes?: number;
  /** Hub replicas: node i dials hubUrls[i % length] first, then follows the replica list the hub
   * hands it (enrollment still goes through hubUrl). Without it every node dials hubUrl alone. */
  hubUrls?: readonly string[];
  /** Answer stack jobs and the stack status stream (default: both get 404, as before). */
  jobs?: SimulatedJobsOptions;
  /** Answer the agent upgrade endpoint (verify, then restart on the new version). */
  upgrade?: SimulatedUpgradeOptions;
  /** Report a fixed host use when the hub asks (default true); false: an agent that predates those reports. */
  hostUsage?: boolean;
}

export interface SimulatedFleet {
  nodes: string[];
  stop(): Promise<void>;
  connectedCount(): number;
  /** Channels that ended for good (fatal refusal), with the reason. */
  failures(): Array<{ node: string; error: string }>;
  /** Since start: completed handshakes, and links or attempts that ended (drops include failed dials). */
  stats(): { connects: number; drops: number };
  /** Connected nodes per hub origin (the replica each one's link is on now). */
  connectedByHub(): Record<string, number>;
  /** The origin of the hub this node's link is on now (null: not connected). */
  hubOf(node: string): string | null;
  /** Makes these nodes hold Docker requests unanswered (true) or answer again (false). */
  stallDocker(nodes: readonly string[], stalled: boolean): void;
  /** Nodes whose Docker paths are stalled now. */
  stalledNodes(): string[];
  /** Drops these nodes' channels; each comes back after `ms` on the same version (a restart without upgrade). */
  restart(nodes: readonly string[], ms: number): void;
  /** The version each node reports now. */
  versionOf(node: string): string | undefined;
}

interface SimNode {
  name: string;
  identity: ChannelIdentity;
  connected: boolean;
  everConnected: boolean;
  version: string;
  /** The current channel's life; aborting it with `restartMs` set restarts the node. */
  life: AbortController | null;
  restartMs: number | null;
  /** The origin of the hub (replica) its link is on, while connected. */
  hub: string | null;
}

/** runChannel asks its backoff for a delay each time a connection ends (or fails): that is the
 * one hook that tells us a link went down, since ChannelOptions has onConnected only. */
class TrackingBackoff extends Backoff {
  readonly #onDown: () => void;
  constructor(opts: BackoffOptions, onDown: () => void) {
    super(opts);
    this.#onDown = onDown;
  }
  override next(): number {
    this.#onDown();
    return super.next();
  }
}

const now = (): number => Date.now();

function fakeContainers(node: string, at: number): Array<Record<string, unknown>> {
  return ['web', 'db', 'cache'].map((role, i) => ({
    Id: `${node.replace(/-/g, '')}${role}`.padEnd(64, '0').slice(0, 64),
    Names: [`/${role}`],
    Image: ['nginx:1.27', 'postgres:16', 'redis:7'][i],
    ImageID: `sha256:${String(i).repeat(64)}`,
    Command: ['nginx -g daemon off;', 'postgres', 'redis-server'][i],
    Created: Math.floor(at / 1000) - 3600 * (i + 1),
    State: i === 2 ? 'exited' : 'running',
    Status: i === 2 ? 'Exited (0) 5 minutes ago' : 'Up 1 hour',
    Ports: i === 0 ? [{ PrivatePort: 80, PublicPort: 8080, Type: 'tcp' }] : [],
    Labels: { 'com.docker.compose.project': 'demo', 'com.docker.compose.service': role },
  }));
}

/** A stats interval whose timers ran this late is reported. */
const LAG_REPORT_MS = 500;
/** The heap is printed this often even when the loop keeps time. */
const HEAP_REPORT_MS = 30_000;
const DOCKER_CONTAINERS_PATH = /^\/docker(?:\/v\d+\.\d+)?\/containers\/json$/;
const DOCKER_PING_PATH = /^\/docker(?:\/v\d+\.\d+)?\/_ping$/;
const DOCKER_EXPORT_PATH = /^\/docker(?:\/v\d+\.\d+)?\/containers\/[^/]+\/export$/;
const EXPORT_CHUNK = Buffer.alloc(256 * 1024, 0x61);

/** `total` bytes of EXPORT_CHUNK, waiting for 'drain' whenever the stream is full. */
function streamBytes(res: Http2ServerResponse, total: number): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= EXPORT_CHUNK.length ? EXPORT_CHUNK : EXPORT_CHUNK.subarray(0, left);
      left -= chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  res.once('close', () => (left = 0));
  pump();
}

/** `count` containers in the engine's GET /containers/json format (~1 KB of JSON each). */
export function fakeDockerContainers(node: string, count: number, at = Date.now()): Array<Record<string, unknown>> {
  const roles = ['web', 'api', 'worker', 'db', 'cache', 'proxy', 'cron', 'queue'];
  return Array.from({ length: count }, (_, i) => {
    const role = roles[i % roles.length]!;
    const id = createHash('sha256').update(`${node}/${i}`).digest('hex');
    const running = i % 5 !== 4;
    return {
      Id: id,
      Names: [`/${role}-${i}`],
      Image: `registry.example/${role}:1.${i}`,
      ImageID: `sha256:${createHash('sha256').update(role).digest('hex')}`,
      Command: `/docker-entrypoint.sh ${role} --port ${8000 + i}`,
      Created: Math.floor(at / 1000) - 3600 * (i + 1),
      Ports: i % 3 === 0 ? [{ IP: '0.0.0.0', PrivatePort: 8000 + i, PublicPort: 18000 + i, Type: 'tcp' }] : [],
      Labels: { 'com.docker.compose.project': 'demo', 'com.docker.compose.service': role, 'com.docker.compose.container-number': String(i) },
      State: running ? 'running' : 'exited',
      Status: running ? `Up ${i + 1} hours` : 'Exited (0) 5 minutes ago',
      HostConfig: { NetworkMode: 'bridge' },
      NetworkSettings: {
        Networks: {
          bridge: {
            IPAMConfig: null,
            Links: null,
            Aliases: null,
            NetworkID: createHash('sha256').update('bridge').digest('hex'),
            EndpointID: running ? createHash('sha256').update(`${id}/ep`).digest('hex') : '',
            Gateway: running ? '172.17.0.1' : '',
            IPAddress: running ? `172.17.0.${i + 2}` : '',
            IPPrefixLen: running ? 16 : 0,
            IPv6Gateway: '',
            GlobalIPv6Address: '',
            GlobalIPv6PrefixLen: 0,
            MacAddress: running ? `02:42:ac:11:00:${(i + 2).toString(16).padStart(2, '0')}` : '',
            DriverOpts: null,
          },
        },
      },
      Mounts:
        i % 4 === 0
          ? [{ Type: 'volume', Name: `${role}-data`, Source: `/var/lib/docker/volumes/${role}-data/_data`, Destination: '/data', Driver: 'local', Mode: 'z', RW: true, Propagation: '' }]
          : [],
    };
  });
}

export interface SimulatedDocker {
  /** Fake containers on GET /docker[/vX.Y]/containers/json. */
  containers: number;
  /** Answer GET /docker[/vX.Y]/_ping. */
  ping?: boolean;
  /** Bytes streamed on GET /docker[/vX.Y]/containers/ID/export (0: none). */
  exportBytes?: number;
  /** While true, Docker requests are held and never answered. */
  stalled: () => boolean;
}

/** The agent side of the tunnel without an engine: 204 for the no-op, a fixed inventory (with
 * one fixed host-usage report when the hub asks and `hostUsage`), and (with `docker`) a fake
 * container list on the Docker path. */
export function simulatedTunnelHandler(
  node: string,
  docker?: SimulatedDocker,
  jobs?: SimulatedJobsOptions,
  extra?: (req: Http2ServerRequest, res: Http2ServerResponse) => boolean,
  hostUsage = true,
): TunnelHandler {
  let containersBody: string | null = null;
  const jobHandler: JobHandler | null = jobs ? simulatedJobHandler(node, jobs) : null;
  const facts = {
    version: '27.3.1',
    apiVersion: '1.47',
    os: 'Ubuntu 24.04.1 LTS',
    arch: 'x86_64',
    kernel: '6.8.0-45-generic',
    cpus: 4,
    memoryBytes: 8 * 1024 ** 3,
    hostname: node,
  };
  return (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const path = req.url.split('?')[0];
    if (path === NOOP_PATH) {
      res.writeHead(204);
      res.end();
      return;
    }
    if (jobHandler?.(req, res)) return;
    if (extra?.(req, res)) return;
    if (path === INVENTORY_PATH && req.method === 'GET') {
      const at = now();
      const lines: InventoryMessage[] = [
        { t: 'engine', state: 'up', facts },
        // With a Docker container list, the inventory carries the same containers.
        { t: 'section', section: 'containers', items: docker ? fakeDockerContainers(node, docker.containers, at) : fakeContainers(node, at), at },
      ];
      if (hostUsage && req.url.split('?')[1]?.split('&').includes(HOST_USAGE_QUERY)) lines.push({ t: 'hostUsage', cpuBusyRatio: 0.25, memoryAvailableBytes: 6 * 1024 ** 3 });
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(lines.map((m) => `${JSON.stringify(m)}\n`).join(''));
      // Stays open, as a real agent's stream does while it watches the engine.
      return;
    }
    if (docker && path?.startsWith('/docker/')) {
      // A stalled node holds the request; the hub's deadline cancels the stream.
      if (docker.stalled()) return;
      if (docker.ping && DOCKER_PING_PATH.test(path) && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 2, 'api-version': '1.47' });
        res.end('OK');
        return;
      }
      if (docker.exportBytes && DOCKER_EXPORT_PATH.test(path) && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/x-tar' });
        streamBytes(res, docker.exportBytes);
        return;
      }
      if (DOCKER_CONTAINERS_PATH.test(path) && req.method === 'GET') {
        containersBody ??= JSON.stringify(fakeDockerContainers(node, docker.containers));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(containersBody), 'api-version': '1.47' });
        res.end(containersBody);
        return;
      }
    }
    const body = JSON.stringify({ message: `no such agent endpoint ${path}` });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** A counting gate: at most `limit` holders at once. */
class Gate {
  #free: number;
  readonly #waiters: Array<() => void> = [];
  constructor(limit: number) {
    this.#free = limit;
  }
  /** A slot, once one is free; rejects if `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new Error('aborted');
    if (this.#free > 0) this.#free--;
    else
      await new Promise<void>((resolve, reject) => {
        const waiter = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          reject(new Error('aborted'));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(waiter);
      });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

async function enrollOne(http: HubHttp, name: string): Promise<ChannelIdentity> {
  const { code } = await http.json<{ code: string }>('POST', '/api/v1/enrollments', { name });
  const keys = generateNodeKey();
  await http.json('POST', '/api/v1/enroll', { code, publicKey: keys.publicKeyPem }, { auth: false });
  const privateKey: KeyObject = createPrivateKey(keys.privateKeyPem);
  return { node: name, keyId: keyIdOf(keys.publicKeyPem), caPem: '', sign: (payload) => signWith(privateKey, payload) };
}

export async function startSimulatedFleet(opts: SimulatedFleetOptions): Promise<SimulatedFleet> {
  const hubUrl = new URL(opts.hubUrl);
  const concurrency = Math.max(1, opts.concurrency ?? 32);
  const log = opts.log ?? silentLogger();
  const width = String(Math.max(0, opts.count - 1)).length;
  const names = Array.from({ length: opts.count }, (_, i) => `${opts.namePrefix}-${String(i).padStart(width, '0')}`);

  // 1. Enroll: one single-use code per node, one fresh Ed25519 key per node.
  const http = new HubHttp(hubUrl, opts.caPem, opts.token, Math.min(concurrency, 16));
  const sims: SimNode[] = new Array(names.length);
  try {
    await runPool(names.length, Math.min(concurrency, 16), async (i) => {
      const identity = await enrollOne(http, names[i]!);
      sims[i] = { name: names[i]!, identity: { ...identity, caPem: opts.caPem }, connected: false, everConnected: false, version: 'bench-sim', life: null, restartMs: null, hub: null };
    });
  } finally {
    http.close();
  }

  // 2. Connect: every node runs the real runChannel; each dial (first or again) waits for a slot of the gate.
  let connected = 0;
  let connects = 0;
  let drops = 0;
  const failures: Array<{ node: string; error: string }> = [];
  const setConnected = (sim: SimNode, up: boolean): void => {
    if (!up) sim.hub = null;
    if (sim.connected === up) return;
    sim.connected = up;
    connected += up ? 1 : -1;
    opts.onChange?.(connected);
  };
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // each node's channel life listens to it
  const gate = new Gate(concurrency);
  const stalled = new Set<string>();
  const dockerContainers = opts.dockerContainers ?? 0;
  const docker = dockerContainers > 0 || opts.dockerPing || (opts.exportBytes ?? 0) > 0;
  const hubUrls = opts.hubUrls && opts.hubUrls.length > 0 ? opts.hubUrls.map((u) => new URL(u)) : null;
  const running = sims.map(async (sim, index) => {
    // With replicas, this node's list (first its own replica, then what the hub hands it) outlives its channels.
    const replicas = hubUrls ? await ReplicaList.open(null, hubUrls[index % hubUrls.length]!, log) : undefined;
    const upgrade = opts.upgrade;
    const restartInto = (version: string, ms: number): void => {
      sim.version = version;
      sim.restartMs = ms;
      sim.life?.abort();
    };
    const upgradeHandler = upgrade ? simulatedUpgradeHandler(upgrade, (version) => restartInto(version, upgrade.restartMs)) : undefined;
    try {
      while (!abort.signal.aborted) {
        sim.life = new AbortController();
        const life = sim.life;
        const stop = (): void => life.abort();
        abort.signal.addEventListener('abort', stop, { once: true });
        await runOnce(life.signal);
        abort.signal.removeEventListener('abort', stop);
        if (abort.signal.aborted || sim.restartMs === null) break;
        const wait = sim.restartMs;
        sim.restartMs = null;
        setConnected(sim, false);
        await new Promise((r) => setTimeout(r, wait));
      }
    } catch (err) {
      failures.push({ node: sim.name, error: (err as Error).message });
    } finally {
      setConnected(sim, false);
    }

    async function runOnce(signal: AbortSignal): Promise<void> {
      await runChannel(
        {
          hubUrl,
          identity: sim.identity,
          handler: simulatedTunnelHandler(
            sim.name,
            docker ? { containers: dockerContainers, ping: opts.dockerPing ?? false, exportBytes: opts.exportBytes ?? 0, stalled: () => stalled.has(sim.name) } : undefined,
            opts.jobs,
            upgradeHandler,
            opts.hostUsage ?? true,
          ),
          log,
          ...(replicas ? { replicas, onReplicas: (list: string[]) => replicas.learn(list) } : {}),
          agentVersion: sim.version,
          backoff: new TrackingBackoff({ initialMs: 100, maxMs: 10_000 }, () => {
            drops++;
            setConnected(sim, false);
          }),
          // Every dial, the first and each reconnect, takes a slot until its link is up or it failed.
          dialGate: (signal) => gate.acquire(signal),
          onConnected: () => {
            connects++;
            sim.everConnected = true;
            setConnected(sim, true);
            sim.hub = (replicas ? replicas.current() : hubUrl).origin;
          },
        },
        signal,
      );
    }
  });

  return {
    nodes: names,
    connectedCount: () => connected,
    failures: () => [...failures],
    stats: () => ({ connects, drops }),
    hubOf: (node) => sims.find((s) => s.name === node)?.hub ?? null,
    connectedByHub() {
      const out: Record<string, number> = {};
      for (const sim of sims) if (sim.connected && sim.hub) out[sim.hub] = (out[sim.hub] ?? 0) + 1;
      return out;
    },
    stallDocker(nodes, on) {
      for (const n of nodes) {
        if (!names.includes(n)) throw new Error(`no simulated node ${n}`);
        if (on) stalled.add(n);
        else stalled.delete(n);
      }
    },
    stalledNodes: () => [...stalled].sort(),
    restart(nodes, ms) {
      for (const n of nodes) {
        const sim = sims.find((s) => s.name === n);
        if (!sim) throw new Error(`no simulated node ${n}`);
        sim.restartMs = ms;
        sim.life?.abort();
      }
    },
    versionOf: (node) => sims.find((s) => s.name === node)?.version,
    async stop() {
      abort.abort();
      await Promise.allSettled(running);
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      hub: { type: 'string' },
      ca: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      count: { type: 'string' },
      prefix: {
        type: 'string',
        default: `sim-${hostname()
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '')}`.slice(0, 40),
      },
      concurrency: { type: 'string', default: '32' },
      'watch-stdin': { type: 'boolean', default: false },
      'docker-containers': { type: 'string', default: '0' },
      'control-stdin': { type: 'boolean', default: false },
      jobs: { type: 'boolean', default: false },
      'job-delay-ms': { type: 'string', default: '0' },
      hubs: { type: 'string' },
      'docker-ping': { type: 'boolean', default: false },
      'export-bytes': { type: 'string', default: '0' },
    },
  });
  if (!values.hub || !values.ca || !values.count || (!values.token && !values['token-file'])) {
    process.stderr.write(
      'usage: agent-simulator.ts --hub URL --ca FILE (--token T | --token-file FILE) --count N --prefix P [--concurrency C] [--watch-stdin] [--docker-containers K] [--control-stdin] [--jobs] [--job-delay-ms D] [--hubs URL,URL,…] [--docker-ping] [--export-bytes B]\n',
    );
    process.exitCode = 2;
    return;
  }
  const token = values.token ?? (await readFile(values['token-file']!, 'utf8')).trim();
  const caPem = await readFile(values.ca, 'utf8');
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive integer, got ${values.count}`);
  const dockerContainers = Number(values['docker-containers']);
  if (!Number.isInteger(dockerContainers) || dockerContainers < 0) throw new Error(`--docker-containers must be a non-negative integer, got ${values['docker-containers']}`);

  const exportBytes = Number(values['export-bytes']);
  if (!Number.isSafeInteger(exportBytes) || exportBytes < 0) throw new Error(`--export-bytes must be a non-negative integer, got ${values['export-bytes']}`);
  const hubUrls = values.hubs
    ? values.hubs
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean)
    : undefined;

  let jobDelayMs = Number(values['job-delay-ms']);
  if (!Number.isFinite(jobDelayMs) || jobDelayMs < 0) throw new Error(`--job-delay-ms must be a non-negative number, got ${values['job-delay-ms']}`);
  const jobs: SimulatedJobsOptions | undefined = values.jobs ? { delayMs: () => jobDelayMs, onJob: (j) => void process.stdout.write(`job ${j.id} ${j.node} ${j.seenAt.toFixed(3)}\n`) } : undefined;

  let printed = -1;
  let timer: NodeJS.Timeout | null = null;
  let fleet: SimulatedFleet | null = null;
  const print = (): void => {
    timer = null;
    const n = fleet?.connectedCount() ?? 0;
    if (n === printed) return;
    printed = n;
    process.stdout.write(`simulated ${n} connected\n`);
  };
  const started = Date.now();
  fleet = await startSimulatedFleet({
    hubUrl: values.hub,
    caPem,
    token,
    count,
    namePrefix: values.prefix!,
    concurrency: Number(values.concurrency),
    dockerContainers,
    dockerPing: values['docker-ping'],
    exportBytes,
    ...(hubUrls ? { hubUrls } : {}),
    jobs,
    // Reaching everyone (or losing everyone) is printed at once; in between, at most every 250 ms.
    onChange: (n) => {
      if (n === count || n === 0) print();
      else timer ??= setTimeout(print, 250);
    },
  });
  process.stdout.write(`enrolled ${count} in ${Date.now() - started} ms\n`);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`agent-simulator: stopping (${why})\n`);
    if (timer) clearTimeout(timer);
    await fleet!.stop();
    for (const f of fleet!.failures().slice(0, 5)) process.stderr.write(`agent-simulator: ${f.node} gave up: ${f.error}\n`);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  if (values['watch-stdin']) {
    process.stdin.on('end', () => void stop('stdin closed'));
    process.stdin.on('error', () => void stop('stdin error'));
    process.stdin.resume();
  }
  if (values['control-stdin']) {
    createInterface({ input: process.stdin }).on('line', (line) => {
      const delay = /^job-delay (\d+(?:\.\d+)?)$/.exec(line.trim());
      if (delay) {
        jobDelayMs = Number(delay[1]);
        return void process.stdout.write(`job-delay ${jobDelayMs}\n`);
      }
      const where = /^where (\S+)$/.exec(line.trim());
      if (where) return void process.stdout.write(`where ${where[1]} ${fleet!.hubOf(where[1]!) ?? 'none'}\n`);
      const m = /^(stall|unstall) (\S+)$/.exec(line.trim());
      if (!m) return void process.stderr.write(`agent-simulator: unknown command "${line}"\n`);
      try {
        fleet!.stallDocker(m[2]!.split(','), m[1] === 'stall');
        process.stdout.write(`${m[1]}ed ${fleet!.stalledNodes().length}\n`);
      } catch (err) {
        process.stdout.write(`error ${(err as Error).message}\n`);
      }
    });
  }
  // Also keeps the process alive (the channels' timers are unref'd).
  let lastStats = '';
  // How late this process's own timers ran: a simulator that stalls stops heartbeating, and the
  // hubs drop its links as silent; the log should say which side was stuck.
  // With it, the longest garbage collection and the heap against its limit: a heap near its
  // limit collects again and again, and each full collection stops everything.
  const lag = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  let gcMax = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration);
  }).observe({ entryTypes: ['gc'] });
  let heapReportedAt = 0;
  setInterval(() => {
    const lagMax = Math.round(lag.max / 1e6);
    lag.reset();
    const late = lagMax >= LAG_REPORT_MS;
    if (late || Date.now() - heapReportedAt >= HEAP_REPORT_MS) {
      const heap = getHeapStatistics();
      const mib = (n: number): number => Math.round(n / 2 ** 20);
      process.stdout.write(`${late ? `lag max=${lagMax}ms ` : ''}heap=${mib(heap.used_heap_size)}/${mib(heap.heap_size_limit)}MiB gc max=${Math.round(gcMax)}ms\n`);
      heapReportedAt = Date.now();
    }
    gcMax = 0;
    const { connects, drops } = fleet!.stats();
    let line = `stats connects=${connects} drops=${drops}`;
    if (hubUrls) {
      const byHub = fleet!.connectedByHub();
      line += `\nby-hub ${Object.keys(byHub)
        .sort()
        .map((h) => `${h}=${byHub[h]}`)
        .join(' ')}`;
    }
    if (line !== lastStats) process.stdout.write(`${line}\n`);
    lastStats = line;
  }, 2_000);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`agent-simulator: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
