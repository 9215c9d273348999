// Test harness: real, throw-away Docker engines on this machine.
//
// Each engine is a private `dockerd` (vfs storage, its own containerd, its own
// unix socket, data-root, exec-root, pidfile, Linux bridge, address pool and
// cgroup parent), so several can run side by side without touching a system
// Docker. No registry is needed: a tiny busybox image is imported from a tar
// built out of the host's static busybox.
//
// Everything talks to the Engine API over the unix socket with node:http; the
// docker CLI is never used. Processes started here are tracked by pid and
// killed on stop(), on process exit, and (if a previous run was SIGKILLed) by
// the stale-run reaper at the next startEngines().

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const BUSYBOX_IMAGE = 'dockfleet-test/busybox:latest';

/** Applets that must exist in the test image (everything `busybox --list` prints is added too). */
const REQUIRED_APPLETS = [
  'sh',
  'sleep',
  'echo',
  'cat',
  'ls',
  'ps',
  'top',
  'env',
  'id',
  'true',
  'false',
  'yes',
  'head',
  'wc',
  'dd',
  'sha256sum',
  'mkdir',
  'rm',
  'date',
  'hostname',
  'seq',
  'grep',
  'tail',
];

const BASE_PREFIX = 'dockfleet-eng-';
const BRIDGE_PREFIX = 'dfleet'; // + N (1..254): interface names stay well under 15 chars
const STARTUP_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 30_000;
const SYS_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Binaries that an engine of ours runs with our directory on their command line (or as a child). */
const OUR_COMMS = new Set(['dockerd', 'containerd', 'containerd-shim', 'containerd-shim-runc-v1', 'containerd-shim-runc-v2', 'docker-proxy', 'runc']);

export interface TestEngine {
  /** e.g. "engine-0" (prefix from startEngines opts, then "-index"). */
  readonly name: string;
  /** Absolute path of the engine's API unix socket. */
  readonly socketPath: string;
  /** `unix://${socketPath}`, ready for DOCKER_HOST. */
  readonly dockerHost: string;
  /** Pid of the current dockerd (changes on restart/start; the last one after stop/kill). */
  readonly pid: number;
  /** This engine's private directory (holds the socket, data, exec root, log). */
  readonly dir: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** dockerd's stdout+stderr. */
  readonly logFile: string;
  /** Name of the Linux bridge this engine's default network uses. */
  readonly bridge: string;
  /** Subnet of that bridge, e.g. "10.213.7.0/24" (gateway .1). */
  readonly subnet: string;
  /** True while dockerd is running (between start and kill/stop). */
  readonly running: boolean;
  /** Final teardown: kill containers, SIGTERM dockerd (SIGKILL past a deadline), sweep leftovers, delete bridge and dirs. Idempotent. */
  stop(): Promise<void>;
  /**
   * Make the engine go away while keeping its data, bridge and socket path, so
   * start()/restart() can bring it back with containers and images intact.
   * Default is a graceful SIGTERM (dockerd stops its containers); `signal: 'SIGKILL'`
   * simulates a crash (containers/shims are left running until the next start or stop).
   */
  kill(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  /** Start dockerd again on the same socket and data after kill(). No-op if running. */
  start(): Promise<void>;
  /** kill() then start(): same socket, same data, new pid. */
  restart(): Promise<void>;
  /** Last `lines` lines of dockerd's log ('(no log)' once stop() removed it). */
  logTail(lines?: number): string;
}

export interface StartEnginesOptions {
  /** Engine names are `${prefix}-${index}`; default "engine". */
  prefix?: string;
  /** Import BUSYBOX_IMAGE into each engine (default true). */
  importImage?: boolean;
}

export interface EngineResponse {
  status: number;
  /** Parsed JSON body, or null when the body is empty or not JSON. */
  json: any;
  text: string;
  headers: http.IncomingHttpHeaders;
}

export interface EngineRequestOptions {
  headers?: Record<string, string>;
  /** Whole-request timeout (default 30 s). */
  timeoutMs?: number;
}

export interface RunContainerOptions {
  name?: string;
  /** Default ['sleep', '3600']. */
  cmd?: string[];
  labels?: Record<string, string>;
  env?: string[];
  /** Run docker-init as pid 1 so SIGTERM stops the container at once (default true). */
  init?: boolean;
  /** Extra top-level container config, shallow-merged over the defaults. */
  config?: Record<string, unknown>;
  /** Extra HostConfig, shallow-merged over the defaults. */
  hostConfig?: Record<string, unknown>;
  /** Start after create (default true). */
  start?: boolean;
  image?: string;
}

// ---------------------------------------------------------------------------
// Engine API over the unix socket

/**
 * One Engine API call over a unix socket. `body`: undefined → no body;
 * Buffer/Uint8Array → sent raw as application/x-tar; anything else → JSON.
 */
export function engineRequest(socketPath: string, method: string, urlPath: string, body?: unknown, opts: EngineRequestOptions = {}): Promise<EngineResponse> {
  let payload: Buffer | undefined;
  const headers: Record<string, string> = { Host: 'docker' };
  if (body instanceof Uint8Array) {
    payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    headers['Content-Type'] = 'application/x-tar';
  } else if (body !== undefined) {
    payload = Buffer.from(JSON.stringify(body));
    headers['Content-Type'] = 'application/json';
  }
  if (payload) headers['Content-Length'] = String(payload.length);
  Object.assign(headers, opts.headers);
  const timeoutMs = opts.timeoutMs ?? 30_000;

  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any = null;
        if (text.trim() !== '') {
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
        }
        resolve({ status: res.statusCode ?? 0, json, text, headers: res.headers });
      });
    });
    const timer = setTimeout(() => {
      req.destroy(new Error(`engineRequest ${method} ${urlPath} on ${socketPath}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(payload);
  });
}

/** Create (and by default start) a busybox container; returns its id. */
export async function runContainer(engine: TestEngine, opts: RunContainerOptions = {}): Promise<string> {
  const config: Record<string, unknown> = {
    Image: opts.image ?? BUSYBOX_IMAGE,
    Cmd: opts.cmd ?? ['sleep', '3600'],
    Labels: opts.labels ?? {},
    ...(opts.env ? { Env: opts.env } : {}),
    ...opts.config,
    HostConfig: { Init: opts.init ?? true, ...opts.hostConfig },
  };
  const q = opts.name ? `?name=${encodeURIComponent(opts.name)}` : '';
  const created = await engineRequest(engine.socketPath, 'POST', `/containers/create${q}`, config);
  if (created.status !== 201) {
    throw new Error(`runContainer on ${engine.name}: create failed (${created.status}): ${created.text.trim()}`);
  }
  const id = String(created.json.Id);
  if (opts.start ?? true) {
    const started = await engineRequest(engine.socketPath, 'POST', `/containers/${id}/start`);
    if (started.status !== 204 && started.status !== 304) {
      throw new Error(`runContainer on ${engine.name}: start failed (${started.status}): ${started.text.trim()}`);
    }
  }
  return id;
}

// ---------------------------------------------------------------------------
// Process / mount / network helpers (sync, so the exit handler can use them)

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  startTime: string;
  cmdline: string;
}

function readProc(pid: number): ProcInfo | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      /* gone */
    }
    return { pid, ppid: Number(rest[1]), comm, state: rest[0] ?? '?', startTime: rest[19] ?? '', cmdline };
  } catch {
    return null;
  }
}

function listProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = readProc(Number(e));
    if (p) out.push(p);
  }
  return out;
}

function isAlive(pid: number): boolean {
  const p = readProc(pid);
  return p !== null && p.state !== 'Z' && p.state !== 'X';
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function trySignal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/**
 * Pids of processes that belong to the engine living in `dir`: our binaries
 * whose command line names the directory (dockerd, containerd, shims), plus
 * all their descendants (container processes, docker-proxy, …).
 */
function processesOf(dir: string): number[] {
  const procs = listProcs();
  const needle = dir.endsWith('/') ? dir : `${dir}/`;
  const roots = procs.filter((p) => p.pid !== process.pid && OUR_COMMS.has(p.comm) && `${p.cmdline} `.includes(needle));
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const found = new Set<number>();
  const stack = roots.map((r) => r.pid);
  while (stack.length) {
    const pid = stack.pop()!;
    if (found.has(pid) || pid === process.pid) continue;
    found.add(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return [...found];
}

/** SIGKILL every process of the engine in `dir` (descendants first) and wait for them to go. */
function killProcessesOfSync(dir: string, extraPids: number[] = []): void {
  for (let round = 0; round < 3; round++) {
    const pids = [...new Set([...processesOf(dir), ...extraPids.filter(isAlive)])];
    if (pids.length === 0) return;
    for (const pid of pids.reverse()) trySignal(pid, 'SIGKILL');
    const until = Date.now() + 5_000;
    while (Date.now() < until && pids.some(isAlive)) sleepSync(20);
  }
}

function mountsUnder(dir: string): string[] {
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points: string[] = [];
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const decoded = mp.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === dir || decoded.startsWith(prefix)) points.push(decoded);
  }
  // Deepest first.
  return points.sort((a, b) => b.length - a.length);
}

function unmountAllSync(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const mp of points) {
      try {
        execFileSync('umount', ['-l', mp], { stdio: 'ignore', env: { ...process.env, PATH: SYS_PATH } });
      } catch {
        /* try again */
      }
    }
  }
}

function ipSync(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: SYS_PATH } });
}

/** Interface → IPv4 CIDRs, from `ip -o -4 addr show`. */
function ipv4Addresses(): Array<{ dev: string; cidr: string }> {
  let out = '';
  try {
    out = ipSync(['-o', '-4', 'addr', 'show']);
  } catch {
    return [];
  }
  const res: Array<{ dev: string; cidr: string }> = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\S+)/.exec(line);
    if (m) res.push({ dev: m[1]!, cidr: m[2]! });
  }
  return res;
}

function linkExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

function deleteLinkSync(name: string): void {
  if (!linkExists(name)) return;
  try {
    ipSync(['link', 'del', name]);
  } catch {
    /* best effort */
  }
}

/** Remove a cgroup subtree (cgroupfs only allows rmdir, deepest first) in every mounted hierarchy. */
function removeCgroupSync(cgroupParent: string): void {
  let info = '';
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const roots = new Set<string>();
  for (const line of info.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') roots.add(line.split(' ')[4]!);
  }
  const rmTree = (d: string): void => {
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) rmTree(path.join(d, e.name));
    try {
      fs.rmdirSync(d);
    } catch {
      /* busy or gone */
    }
  };
  for (const root of roots) rmTree(path.join(root, cgroupParent.replace(/^\/+/, '')));
}

// ---------------------------------------------------------------------------
// Per-engine state on disk (used to reap runs that died without cleaning up)

interface EngineState {
  name: string;
  dir: string;
  bridge: string;
  net: number; // N in 10.213.N.0/24 (bridge) and 10.214.N.0/24 (pool for user networks)
  cgroupParent: string;
}

/** Everything that can be torn down without dockerd's help. Sync; safe in an exit handler. */
function forceCleanupSync(state: EngineState, extraPids: number[] = []): void {
  try {
    killProcessesOfSync(state.dir, extraPids);
  } catch {
    /* best effort */
  }
  try {
    unmountAllSync(state.dir);
  } catch {
    /* best effort */
  }
  try {
    // Bridges dockerd made for user-defined networks (10.214.N.x) and our own.
    const pool = `10.214.${state.net}.`;
    for (const a of ipv4Addresses()) if (a.cidr.startsWith(pool)) deleteLinkSync(a.dev);
    deleteLinkSync(state.bridge);
  } catch {
    /* best effort */
  }
  try {
    removeCgroupSync(state.cgroupParent);
  } catch {
    /* best effort */
  }
  try {
    fs.rmSync(state.dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
}

function removeBaseIfEmpty(base: string): void {
  try {
    const left = fs.readdirSync(base).filter((e) => e !== 'owner.json' && e !== 'image');
    if (left.length === 0) fs.rmSync(base, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* gone */
  }
}

/** Clean up after earlier runs whose owning process is gone (e.g. a SIGKILLed test). */
function reapStaleRunsSync(): void {
  for (const tmp of new Set([os.tmpdir(), '/tmp'])) reapStaleRunsIn(tmp);
}

function reapStaleRunsIn(tmp: string): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(tmp);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(BASE_PREFIX)) continue;
    const base = path.join(tmp, e);
    let stale = false;
    try {
      const owner = JSON.parse(fs.readFileSync(path.join(base, 'owner.json'), 'utf8')) as { pid: number; startTime: string };
      const p = readProc(owner.pid);
      stale = !p || p.startTime !== owner.startTime;
    } catch {
      // No owner file: only stale once it is clearly not a run that is just starting.
      try {
        stale = Date.now() - fs.statSync(base).mtimeMs > 60_000;
      } catch {
        stale = false;
      }
    }
    if (!stale) continue;
    let subs: string[] = [];
    try {
      subs = fs.readdirSync(base);
    } catch {
      /* gone */
    }
    for (const s of subs) {
      const dir = path.join(base, s);
      try {
        const st = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as EngineState;
        forceCleanupSync({ ...st, dir });
      } catch {
        try {
          killProcessesOfSync(dir);
          unmountAllSync(dir);
        } catch {
          /* best effort */
        }
      }
    }
    try {
      fs.rmSync(base, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      /* best effort */
    }
  }
}

// ---------------------------------------------------------------------------
// Exit-time cleanup of engines this process started

const live = new Set<Engine>();
let hooksInstalled = false;

function cleanupAllSync(): void {
  for (const eng of [...live]) {
    live.delete(eng);
    const pid = eng.pid;
    if (pid > 0 && isAlive(pid)) trySignal(pid, 'SIGKILL');
    forceCleanupSync(eng.state, pid > 0 ? [pid] : []);
    removeBaseIfEmpty(eng.base);
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAllSync();
      process.kill(process.pid, sig); // our listener is gone now: default action
    });
  }
}

// ---------------------------------------------------------------------------
// The engine

function tailOf(file: string, lines = 40): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '(no log)';
  }
}

function findDockerd(): string {
  const candidates = [
    process.env.DOCKFLEET_DOCKERD,
    '/usr/sbin/dockerd',
    '/usr/bin/dockerd',
    ...(process.env.PATH ?? '')
      .split(':')
      .filter(Boolean)
      .map((d) => path.join(d, 'dockerd')),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  throw new Error("startEngines: dockerd not found (looked in /usr/sbin, /usr/bin and PATH). Install Debian's docker.io: apt-get install -y docker.io");
}

class Engine implements TestEngine {
  readonly socketPath: string;
  readonly dockerHost: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly logFile: string;
  readonly subnet: string;
  pid = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    readonly name: string,
    readonly base: string,
    readonly state: EngineState,
    private readonly dockerd: string,
  ) {
    this.socketPath = path.join(state.dir, 'docker.sock');
    this.dockerHost = `unix://${this.socketPath}`;
    this.dataRoot = path.join(state.dir, 'data');
    this.execRoot = path.join(state.dir, 'exec');
    this.logFile = path.join(state.dir, 'dockerd.log');
    this.subnet = `10.213.${state.net}.0/24`;
  }

  get dir(): string {
    return this.state.dir;
  }
  get bridge(): string {
    return this.state.bridge;
  }
  get running(): boolean {
    return this.child !== null;
  }

  logTail(lines = 40): string {
    return tailOf(this.logFile, lines);
  }

  private args(): string[] {
    return [
      '-H',
      this.dockerHost,
      '--data-root',
      this.dataRoot,
      '--exec-root',
      this.execRoot,
      '--pidfile',
      path.join(this.dir, 'dockerd.pid'),
      '--config-file',
      path.join(this.dir, 'daemon.json'),
      '--storage-driver=vfs',
      `--bridge=${this.bridge}`,
      `--default-address-pool=base=10.214.${this.state.net}.0/24,size=28`,
      `--cgroup-parent=${this.state.cgroupParent}`,
      '--iptables=false',
      '--ip6tables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--userland-proxy=true',
    ];
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error(`${this.name}: already stopped for good`);
    if (this.child) return;
    await this.reapContainerd();
    // A crashed (SIGKILLed) dockerd can leave its socket file behind.
    await fsp.rm(this.socketPath, { force: true });
    const log = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.dockerd, this.args(), {
        stdio: ['ignore', log, log],
        detached: true, // own process group: terminal signals go to us, we decide
        env: { ...process.env, PATH: `${SYS_PATH}:${process.env.PATH ?? ''}` },
      });
    } finally {
      fs.closeSync(log);
    }
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    this.child = child;
    this.pid = child.pid ?? 0;
    child.unref(); // a forgotten engine must not keep the test process alive; the exit hook kills it
    live.add(this);
    let exitInfo = '';
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        if (this.child === child) this.child = null;
        resolve();
      });
    });

    const deadline = Date.now() + STARTUP_DEADLINE_MS;
    const fail = async (why: string): Promise<never> => {
      if (this.child === child) await this.terminate('SIGKILL');
      throw new Error(`${this.name}: dockerd did not come up (${why}).\n--- ${this.logFile} (tail) ---\n${this.logTail(40)}`);
    };
    const early: { why: string | null } = { why: null };
    void Promise.race([spawnError.then((e) => `spawn failed: ${e.message}`), this.exited.then(() => `dockerd exited with ${exitInfo}`)]).then((why) => {
      early.why = why;
    });
    while (true) {
      if (early.why !== null) return fail(early.why);
      if (Date.now() > deadline) return fail(`no answer on /_ping within ${STARTUP_DEADLINE_MS / 1000}s`);
      try {
        const r = await engineRequest(this.socketPath, 'GET', '/_ping', undefined, { timeoutMs: 2_000 });
        if (r.status === 200 && r.text === 'OK') return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Signal dockerd and wait for it to exit; escalate to SIGKILL at the deadline. */
  private async terminate(signal: 'SIGTERM' | 'SIGKILL', deadlineMs = STOP_DEADLINE_MS): Promise<void> {
    const child = this.child;
    if (!child) return;
    trySignal(this.pid, signal);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      trySignal(this.pid, 'SIGKILL');
      await this.exited;
    }
    if (this.child === child) this.child = null;
  }

  async kill(opts: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    await this.terminate(opts.signal ?? 'SIGTERM');
    await this.reapContainerd();
  }

  /**
   * dockerd's containerd dies with it (parent-death signal), but not at once,
   * and then stays a zombie until pid 1 reaps it (on this VM's init that takes
   * ~1 s). A dockerd started meanwhile reads containerd.pid, sees the pid
   * "alive", adopts it and times out. So: wait for it to die (SIGKILL it if it
   * will not), and drop the pidfile once it is dead or a zombie.
   */
  private async reapContainerd(): Promise<void> {
    const pidFile = path.join(this.execRoot, 'containerd', 'containerd.pid');
    const needle = `${this.dir}/`;
    const running = (): number[] =>
      listProcs()
        .filter((p) => p.comm === 'containerd' && p.state !== 'Z' && p.cmdline.includes(needle))
        .map((p) => p.pid);
    const pause = () => new Promise((r) => setTimeout(r, 20));
    let until = Date.now() + 3_000;
    while (running().length > 0 && Date.now() < until) await pause();
    const stuck = running();
    if (stuck.length > 0) {
      for (const pid of stuck) trySignal(pid, 'SIGKILL');
      until = Date.now() + 5_000;
      while (stuck.some(isAlive) && Date.now() < until) await pause();
    }
    await fsp.rm(pidFile, { force: true });
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.child) {
      // Kill running containers first: dockerd's own shutdown would wait each one's stop timeout.
      try {
        const list = await engineRequest(this.socketPath, 'GET', '/containers/json', undefined, { timeoutMs: 5_000 });
        if (Array.isArray(list.json)) {
          await Promise.all(list.json.map((c: { Id: string }) => engineRequest(this.socketPath, 'POST', `/containers/${c.Id}/kill`, undefined, { timeoutMs: 5_000 }).catch(() => undefined)));
        }
      } catch {
        /* engine not answering: SIGTERM/SIGKILL below still apply */
      }
      await this.terminate('SIGTERM');
    }
    forceCleanupSync(this.state, this.pid > 0 ? [this.pid] : []);
    live.delete(this);
    removeBaseIfEmpty(this.base);
  }
}

// ---------------------------------------------------------------------------
// Bridges

/** Claim a free N: `ip link add dfleetN` is atomic, so concurrent runs cannot pick the same one. */
async function allocateBridge(): Promise<{ bridge: string; net: number }> {
  const used = new Set<number>();
  for (const a of ipv4Addresses()) {
    const m = /^10\.21[34]\.(\d+)\./.exec(a.cidr);
    if (m) used.add(Number(m[1]));
  }
  const start = 1 + Math.floor(Math.random() * 254);
  for (let k = 0; k < 254; k++) {
    const net = 1 + ((start + k - 1) % 254);
    const bridge = `${BRIDGE_PREFIX}${net}`;
    if (used.has(net) || linkExists(bridge)) continue;
    try {
      await execFileP('ip', ['link', 'add', bridge, 'type', 'bridge'], { env: { ...process.env, PATH: SYS_PATH } });
    } catch (err) {
      if (linkExists(bridge)) continue; // lost a race
      throw new Error(`startEngines: cannot create bridge ${bridge}: ${(err as Error).message}`);
    }
    try {
      await execFileP('ip', ['addr', 'add', `10.213.${net}.1/24`, 'dev', bridge], { env: { ...process.env, PATH: SYS_PATH } });
      await execFileP('ip', ['link', 'set', bridge, 'up'], { env: { ...process.env, PATH: SYS_PATH } });
    } catch (err) {
      deleteLinkSync(bridge);
      throw new Error(`startEngines: cannot configure bridge ${bridge}: ${(err as Error).message}`);
    }
    return { bridge, net };
  }
  throw new Error('startEngines: no free 10.213.N.0/24 subnet / dfleetN bridge name left');
}

// ---------------------------------------------------------------------------
// The busybox image

function isStaticElf(file: string): boolean {
  const buf = fs.readFileSync(file);
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false; // ELF64 LE only
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

let imageTar: Promise<Buffer> | undefined;

/** A tar of bin/busybox + applet symlinks, tmp/ and etc/ (built once per process with the system tar). */
function busyboxTar(workDir: string): Promise<Buffer> {
  imageTar ??= (async () => {
    const busybox = [process.env.DOCKFLEET_BUSYBOX, '/bin/busybox', '/usr/bin/busybox'].find((p) => p && fs.existsSync(p));
    if (!busybox) throw new Error("startEngines: /bin/busybox not found. Install Debian's busybox-static: apt-get install -y busybox-static");
    if (!isStaticElf(busybox)) throw new Error(`startEngines: ${busybox} is not a static x86-64 binary. Install busybox-static instead of busybox`);
    const stage = path.join(workDir, 'image');
    await fsp.mkdir(path.join(stage, 'bin'), { recursive: true });
    await fsp.mkdir(path.join(stage, 'etc'), { recursive: true });
    await fsp.mkdir(path.join(stage, 'tmp'), { recursive: true });
    await fsp.chmod(path.join(stage, 'tmp'), 0o1777);
    await fsp.copyFile(busybox, path.join(stage, 'bin', 'busybox'));
    await fsp.chmod(path.join(stage, 'bin', 'busybox'), 0o755);
    let applets: string[] = [];
    try {
      const { stdout } = await execFileP(busybox, ['--list']);
      applets = stdout
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s && !s.includes('/'));
    } catch {
      /* fall back to the required list */
    }
    for (const a of new Set([...REQUIRED_APPLETS, ...applets])) {
      if (a === 'busybox') continue;
      await fsp.symlink('busybox', path.join(stage, 'bin', a));
    }
    await fsp.writeFile(path.join(stage, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
    await fsp.writeFile(path.join(stage, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const { stdout } = await execFileP('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', stage, '-cf', '-', '.'], {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, PATH: SYS_PATH },
    });
    await fsp.rm(stage, { recursive: true, force: true });
    return stdout;
  })();
  imageTar.catch(() => {
    imageTar = undefined;
  });
  return imageTar;
}

async function importBusybox(engine: TestEngine, tar: Buffer): Promise<void> {
  const [repo, tag] = BUSYBOX_IMAGE.split(':') as [string, string];
  const changes = encodeURIComponent('CMD ["sh"]');
  const post = () => engineRequest(engine.socketPath, 'POST', `/images/create?fromSrc=-&repo=${encodeURIComponent(repo)}&tag=${tag}&changes=${changes}`, tar, { timeoutMs: 60_000 });
  // Once in a suite run with two files starting engines together, the import's connection broke
  // (EPIPE) on an engine that was up: try once more, and then say what the engine logged.
  const r = await post().catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') throw err;
    await new Promise((resolve) => setTimeout(resolve, 500));
    return post().catch((again: Error) => {
      throw new Error(`${engine.name}: importing ${BUSYBOX_IMAGE}: ${err.message}, then ${again.message}\n--- dockerd log (tail) ---\n${engine.logTail(40)}`);
    });
  });
  if (r.status !== 200 || /"error"/.test(r.text)) {
    throw new Error(`${engine.name}: importing ${BUSYBOX_IMAGE} failed (${r.status}): ${r.text.trim()}`);
  }
}

// ---------------------------------------------------------------------------
// Entry points

/**
 * Start `count` private engines in parallel and wait until each answers
 * GET /_ping; then import BUSYBOX_IMAGE into each. Throws (never skips) when
 * engines cannot be started; everything already started is torn down first.
 */
export async function startEngines(count: number, opts: StartEnginesOptions = {}): Promise<TestEngine[]> {
  if (!Number.isInteger(count) || count < 1) throw new Error(`startEngines: count must be a positive integer, got ${count}`);
  const uid = process.getuid?.();
  if (uid !== 0) throw new Error(`startEngines: must run as root to start dockerd (uid is ${uid ?? 'unknown'})`);
  const dockerd = findDockerd();
  if (!fs.existsSync('/sys/class/net')) throw new Error('startEngines: /sys/class/net missing; cannot manage bridges');

  reapStaleRunsSync();
  installExitHooks();

  let tmp = os.tmpdir();
  // unix socket paths must stay short (sun_path is 108 bytes; containerd nests deeper than ours).
  if (tmp.length > 40) tmp = '/tmp';
  const base = await fsp.mkdtemp(path.join(tmp, BASE_PREFIX));
  const me = readProc(process.pid);
  await fsp.writeFile(path.join(base, 'owner.json'), JSON.stringify({ pid: process.pid, startTime: me?.startTime ?? '' }));

  const prefix = opts.prefix ?? 'engine';
  const engines: Engine[] = [];
  const results = await Promise.allSettled(
    Array.from({ length: count }, async (_, i) => {
      const dir = path.join(base, `e${i}`);
      await fsp.mkdir(dir, { mode: 0o700 });
      const { bridge, net } = await allocateBridge();
      const state: EngineState = { name: `${prefix}-${i}`, dir, bridge, net, cgroupParent: `/dockfleet-test-${path.basename(base).slice(BASE_PREFIX.length)}-e${i}` };
      await fsp.writeFile(path.join(dir, 'state.json'), JSON.stringify(state));
      await fsp.writeFile(path.join(dir, 'daemon.json'), '{}\n');
      const engine = new Engine(state.name, base, state, dockerd);
      engines.push(engine);
      live.add(engine); // so cleanup covers the bridge even if dockerd never starts
      await engine.start();
      return engine;
    }),
  );

  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  try {
    if (failures.length === 0 && (opts.importImage ?? true)) {
      const tar = await busyboxTar(base);
      await Promise.all(engines.map((e) => importBusybox(e, tar)));
    }
  } catch (err) {
    failures.push({ status: 'rejected', reason: err });
  }
  if (failures.length > 0) {
    await Promise.allSettled(engines.map((e) => e.stop()));
    await fsp.rm(base, { recursive: true, force: true, maxRetries: 3 });
    const msgs = failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new Error(`startEngines(${count}) failed:\n${msgs.join('\n\n')}`);
  }
  return [...engines].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** stop() every engine (in parallel); never throws for already-stopped engines. */
export async function stopEngines(engines: readonly TestEngine[]): Promise<void> {
  await Promise.all(engines.map((e) => e.stop()));
}

/** Wait for a container to exit; returns its exit code. */
export async function waitContainer(engine: TestEngine, id: string, timeoutMs = 30_000): Promise<number> {
  const r = await engineRequest(engine.socketPath, 'POST', `/containers/${id}/wait`, undefined, { timeoutMs });
  if (r.status !== 200) throw new Error(`waitContainer on ${engine.name}: ${r.status}: ${r.text.trim()}`);
  return Number(r.json.StatusCode);
}

/** stdout+stderr of a (non-TTY) container, demultiplexed into one string. */
export async function containerLogs(engine: TestEngine, id: string): Promise<string> {
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const req = http.request({ socketPath: engine.socketPath, method: 'GET', path: `/containers/${id}/logs?stdout=1&stderr=1`, headers: { Host: 'docker' }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`containerLogs on ${engine.name}: ${res.statusCode}: ${Buffer.concat(chunks).toString()}`))));
    });
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('containerLogs: timed out')));
    req.end();
  });
  // Frames: [stream, 0, 0, 0, size(4, BE)] + payload.
  let out = '';
  for (let off = 0; off + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(off + 4);
    out += raw.subarray(off + 8, off + 8 + size).toString('utf8');
    off += 8 + size;
  }
  return out;
}
