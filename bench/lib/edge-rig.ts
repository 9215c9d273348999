/**
 * One rig for the ingress benches: a private engine (test/support/engines.ts), a real `dockfleet
 * hub` process with `--edge-listen`, a real agent process, and the app (lib/edge-backend.mjs in a
 * container of the node image) labelled `dockfleet.ingress.host=bench.test`; beside them, as
 * baselines, the same container port straight (the container's address on the engine's bridge,
 * which lives in the host's namespace, so no published port and no docker-proxy in the way) and
 * Debian's nginx proxying to it (lib/edge-nginx.ts). Every process is started with a raised
 * open-files limit (prlimit), and the hub with `--max-connections-per-address`, so neither is what
 * caps a run with thousands of connections. Only pids started here are ever signalled.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from '../../test/support/engines.ts';
import { nodeImage } from '../../test/support/node-image.ts';
import { ALL_DOCKER_SECTIONS, BIN, ROOT, childEnv, mintEnrollmentCode, nodeFlags, policyJson, type HubProcess } from './dockfleet-procs.ts';
import { startEdgeNginx, type EdgeNginx } from './edge-nginx.ts';
import { TimedClient, type Target } from './http-timing.ts';
import { freePort, sleep, startChild, type Child } from './proc.ts';

export const EDGE_HOST = 'bench.test';
export const APP_PORT = 8080;
const NODE = 'edge-bench';

export interface EdgeRigOptions {
  /** Engine and temp dir names. */
  prefix: string;
  /** The hub's `--max-connections-per-address` (the edge's per-address cap; default 256). */
  maxConnectionsPerAddress: number;
  /** Open files allowed to the hub, agent, nginx and the app (default 65536). */
  nofile?: number;
  /** nginx `worker_connections` (default 30000). */
  nginxConnections?: number;
}

export interface EdgeRig {
  engine: TestEngine;
  work: string;
  hub: HubProcess;
  agent: Child;
  nginx: EdgeNginx;
  edgePort: number;
  /** The app container: its address on the engine's bridge and the pid of its node process. */
  app: { id: string; ip: string; port: number; pid: number };
  /** Keep-alive HTTP(S) targets for the same app, with the Host the edge routes on. */
  targets: { direct: Target; nginx: Target; edge: Target };
  /** Process ids worth sampling (RSS, CPU). */
  pids: { hub: number; agent: number; nginx: number; app: number; dockerd: number };
  stop(): Promise<void>;
}

/** This process's open-files limit, soft and hard (/proc/self/limits). */
export function openFilesLimit(): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (v: string | undefined): number => (v === undefined || v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/**
 * Makes sure this bench (and so the engine it starts, whose containers inherit its limit) may hold
 * `wanted` open files: when it may not, runs itself again under `prlimit` and exits with that
 * run's status; returns only in a process that has the limit.
 */
export function ensureOpenFiles(wanted: number): void {
  const { soft, hard } = openFilesLimit();
  if (soft >= wanted) return;
  // Raising the hard limit needs CAP_SYS_RESOURCE, which a sandbox may not grant even to root.
  if (hard < wanted) throw new Error(`this bench needs ${wanted} open files; the hard limit here is ${hard} (raise it, e.g. ulimit -Hn, before the bench)`);
  if (process.env.DOCKFLEET_BENCH_REEXEC === '1') throw new Error(`open-files limit still below ${wanted} after prlimit`);
  const run = spawnSync('prlimit', [`--nofile=${wanted}:${wanted}`, '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, DOCKFLEET_BENCH_REEXEC: '1' },
  });
  process.exit(run.status ?? 1);
}

/** `prlimit` runs (execs) the program with its limit raised as far as the hard limit allows: the pid is the program's own. */
function limited(nofile: number, command: string, args: string[]): [string, string[]] {
  const n = Math.min(nofile, openFilesLimit().hard);
  return ['prlimit', [`--nofile=${n}:${n}`, '--', command, ...args]];
}

async function startHub(dir: string, opts: Required<Pick<EdgeRigOptions, 'maxConnectionsPerAddress' | 'nofile'>>, edgePort: number): Promise<HubProcess> {
  const listen = `127.0.0.1:${await freePort()}`;
  const [cmd, args] = limited(opts.nofile, process.execPath, [
    ...nodeFlags('hub'),
    BIN,
    'hub',
    '--data',
    dir,
    '--listen',
    listen,
    '--edge-listen',
    `127.0.0.1:${edgePort}`,
    '--max-connections-per-address',
    String(opts.maxConnectionsPerAddress),
  ]);
  const child = startChild('hub', cmd, args, { cwd: ROOT, env: childEnv() });
  const { line } = await child.waitForLine(/^hub ready /, 60_000);
  const caFile = join(dir, 'pki', 'ca.pem');
  return {
    child,
    caFile,
    dataDir: dir,
    url: line.slice('hub ready '.length).trim(),
    caPem: readFileSync(caFile, 'utf8'),
    token: readFileSync(join(dir, 'admin.token'), 'utf8').trim(),
  };
}

async function startAgent(hub: HubProcess, engine: TestEngine, work: string, nofile: number): Promise<Child> {
  const policyFile = join(work, 'policy.json');
  await writeFile(policyFile, policyJson([...ALL_DOCKER_SECTIONS, 'ingress']));
  const code = await mintEnrollmentCode(hub, NODE);
  const [cmd, args] = limited(nofile, process.execPath, [
    ...nodeFlags(`agent-${NODE}`),
    BIN,
    'agent',
    '--hub',
    hub.url,
    '--code',
    code,
    '--state',
    join(work, 'agent'),
    '--docker',
    engine.dockerHost,
    '--policy',
    policyFile,
  ]);
  const child = startChild(`agent-${NODE}`, cmd, args, { cwd: ROOT, env: childEnv() });
  await child.waitForLine(new RegExp(`^agent ${NODE} connected`), 60_000);
  return child;
}

/** The app in a node-image container; its bridge address and the host pid of its node process. */
async function startApp(engine: TestEngine, work: string, nofile: number): Promise<EdgeRig['app']> {
  const appDir = join(work, 'app');
  // The mount point for ws must exist in the read-only /app.
  await mkdir(join(appDir, 'node_modules', 'ws'), { recursive: true });
  await copyFile(join(ROOT, 'bench', 'lib', 'edge-backend.mjs'), join(appDir, 'server.mjs'));
  const image = await nodeImage(engine);
  const id = await runContainer(engine, {
    name: 'edge-app',
    image,
    cmd: ['node', '/app/server.mjs'],
    labels: { 'dockfleet.ingress.host': EDGE_HOST, 'dockfleet.ingress.port': String(APP_PORT) },
    config: { ExposedPorts: { [`${APP_PORT}/tcp`]: {} }, Env: [`PORT=${APP_PORT}`] },
    hostConfig: {
      Binds: [`${appDir}:/app:ro`, `${join(ROOT, 'node_modules', 'ws')}:/app/node_modules/ws:ro`],
      // A container cannot be given more than the engine (started by this process) may hold.
      Ulimits: [{ Name: 'nofile', Soft: Math.min(nofile, openFilesLimit().hard), Hard: Math.min(nofile, openFilesLimit().hard) }],
    },
  });
  const inspect = (await engineRequest(engine.socketPath, 'GET', `/containers/${id}/json`)).json;
  const ip = String(inspect?.NetworkSettings?.IPAddress ?? '');
  if (!ip) throw new Error(`the app container has no address on the bridge: ${JSON.stringify(inspect?.NetworkSettings ?? null).slice(0, 400)}`);
  // With --init, State.Pid is docker-init; node is its only child.
  const initPid = Number(inspect.State.Pid);
  const deadline = Date.now() + 20_000;
  for (;;) {
    let pid = 0;
    try {
      pid = Number(readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim().split(/\s+/)[0] ?? 0);
    } catch {
      /* not yet */
    }
    if (pid > 0 && (await answers({ kind: 'http', base: `http://${ip}:${APP_PORT}` }))) return { id, ip, port: APP_PORT, pid };
    if (Date.now() > deadline) throw new Error(`the app did not answer on ${ip}:${APP_PORT} within 20 s: ${lastAnswer}`);
    await sleep(100);
  }
}

let lastAnswer = '';

/** One GET /small through `target`: true on a 200 (`lastAnswer` says what came otherwise). */
async function answers(target: Target): Promise<boolean> {
  const client = new TimedClient(target);
  try {
    const res = await client.request('/small', { timeoutMs: 2_000, keepBody: true });
    lastAnswer = `HTTP ${res.status} ${res.body?.toString('utf8').replace(/\s+/g, ' ').slice(0, 300) ?? ''}`;
    return res.status === 200;
  } catch (err) {
    lastAnswer = (err as Error).message;
    return false;
  } finally {
    client.close();
  }
}

export async function startEdgeRig(opts: EdgeRigOptions): Promise<EdgeRig> {
  const nofile = opts.nofile ?? 65_536;
  const [engine] = (await startEngines(1, { prefix: opts.prefix })) as [TestEngine];
  const work = await mkdtemp(join(tmpdir(), `dockfleet-${opts.prefix}-`));
  const started: Array<{ stop(): Promise<void> }> = [];
  const stop = async (): Promise<void> => {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
    await stopEngines([engine]);
    await rm(work, { recursive: true, force: true });
  };
  try {
    const app = await startApp(engine, work, nofile);
    const edgePort = await freePort();
    const hub = await startHub(join(work, 'hub'), { maxConnectionsPerAddress: opts.maxConnectionsPerAddress, nofile }, edgePort);
    started.push({ stop: () => hub.child.stop() });
    const agent = await startAgent(hub, engine, work, nofile);
    started.push({ stop: () => agent.stop() });
    const nginx = await startEdgeNginx(join(work, 'nginx'), `${app.ip}:${app.port}`, { workerConnections: opts.nginxConnections ?? 30_000 });
    started.push(nginx);
    const host = { host: EDGE_HOST };
    const targets: EdgeRig['targets'] = {
      direct: { kind: 'http', base: `http://${app.ip}:${app.port}`, headers: host },
      // No SNI on either TLS path (servername ''): both present their default certificate, valid for 127.0.0.1.
      nginx: { kind: 'https', base: `https://127.0.0.1:${nginx.port}`, caPem: nginx.caPem, headers: host, servername: '' },
      edge: { kind: 'https', base: `https://127.0.0.1:${edgePort}`, caPem: hub.caPem, headers: host, servername: '' },
    };
    const deadline = Date.now() + 20_000;
    while (!(await answers(targets.edge))) {
      if (Date.now() > deadline) throw new Error(`the edge did not serve ${EDGE_HOST} within 20 s; last answer: ${lastAnswer}`);
      await sleep(100);
    }
    if (!(await answers(targets.nginx))) throw new Error(`nginx did not serve the app: ${lastAnswer}`);
    return {
      engine,
      work,
      hub,
      agent,
      nginx,
      edgePort,
      app,
      targets,
      pids: { hub: hub.child.pid, agent: agent.pid, nginx: nginx.child.pid, app: app.pid, dockerd: engine.pid },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
