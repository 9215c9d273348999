/**
 * Real `dockfleet hub` and `dockfleet agent` processes for benches (separate event loops from the
 * bench's client), started with lib/proc's startChild so they are killed by pid when the bench
 * dies. Proxy variables are dropped from their environment so all traffic stays local.
 *
 * BENCH_CPU_PROF=DIR adds `--cpu-prof --cpu-prof-dir=DIR` to every hub and agent started here
 * (profiles are written when they exit on SIGTERM). BENCH_NODE_FLAGS adds Node/V8 flags (space-separated)
 * to each, for experiments such as --trace-gc.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubHttp } from './hub-http.ts';
import { startChild, type Child } from './proc.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'dockfleet.js');

const PROXY_VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy'];

export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of PROXY_VARS) delete env[k];
  return env;
}

/** Node flags for hub/agent children: BENCH_NODE_FLAGS, then CPU profiling when BENCH_CPU_PROF is set. */
export function nodeFlags(label: string): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  const extra = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  return [...extra, ...(dir ? ['--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`, `--cpu-prof-name=${label}-${Date.now()}.cpuprofile`] : [])];
}

export interface HubProcess {
  child: Child;
  url: string;
  caPem: string;
  caFile: string;
  token: string;
  dataDir: string;
}

/** `hubArgs`: more `dockfleet hub` flags (say, a higher per-address link cap). */
export async function startHubProcess(dataDir: string, listen: string, label = 'hub', hubArgs: string[] = []): Promise<HubProcess> {
  const child = startChild(label, process.execPath, [...nodeFlags(label), BIN, 'hub', '--data', dataDir, '--listen', listen, ...hubArgs], {
    cwd: ROOT,
    env: childEnv(),
  });
  const { line } = await child.waitForLine(/^hub ready /, 60_000);
  const caFile = join(dataDir, 'pki', 'ca.pem');
  return {
    child,
    url: line.slice('hub ready '.length).trim(),
    caPem: await readFile(caFile, 'utf8'),
    caFile,
    token: (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim(),
    dataDir,
  };
}

/** Mints a single-use enrollment code for `name` through the REST API. */
export async function mintEnrollmentCode(hub: HubProcess, name: string): Promise<string> {
  const http = new HubHttp(hub.url, hub.caPem, hub.token, 1);
  try {
    return (await http.json<{ code: string }>('POST', '/api/v1/enrollments', { name })).code;
  } finally {
    http.close();
  }
}

export interface AgentProcessOptions {
  hub: HubProcess;
  name: string;
  stateDir: string;
  /** unix:///path/to/docker.sock */
  docker: string;
  policyFile: string;
  /** Runs the agent inside this network namespace (`ip netns exec NS node …`). */
  netns?: string;
  /** The hub URL as the agent dials it (default hub.url). */
  hubUrl?: string;
}

/** Enrolls and starts an agent; resolves once it printed `agent NAME connected`. */
export async function startAgentProcess(opts: AgentProcessOptions): Promise<Child> {
  const code = await mintEnrollmentCode(opts.hub, opts.name);
  const label = `agent-${opts.name}`;
  const nodeArgs = [...nodeFlags(label), BIN, 'agent', '--hub', opts.hubUrl ?? opts.hub.url, '--code', code, '--state', opts.stateDir, '--docker', opts.docker, '--policy', opts.policyFile];
  // `ip netns exec` execs node in place (no fork), so the child's pid is node's own pid.
  const [cmd, args] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = startChild(label, cmd as string, args as string[], { cwd: ROOT, env: childEnv() });
  await child.waitForLine(new RegExp(`^agent ${opts.name} connected`), 60_000);
  return child;
}

/** Every Docker API section on (what `docker cp`/`docker export` need: archive). */
export const ALL_DOCKER_SECTIONS = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'build', 'volumes', 'networks', 'distribution', 'archive', 'imageExport'];

export function policyJson(sections: readonly string[] = ALL_DOCKER_SECTIONS): string {
  return JSON.stringify({ sections: Object.fromEntries(sections.map((s) => [s, true])) });
}
