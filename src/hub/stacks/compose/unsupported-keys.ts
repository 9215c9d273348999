/**
 * What dockfleet carries of the Compose Specification, key by key. A key the specification
 * allows but that is not listed here is refused by name and line, never silently dropped:
 * a deploy that quietly lost `privileged: true` or `network_mode: host` would run something
 * other than what its file says. `x-` extension keys are allowed everywhere.
 */
import type { ComposePath, ComposeProblem } from './compose-path.ts';

/** `true`: taken whole. `'[]'`: the shape of a list's object items; `'*'`: of any map key. */
type KeySpec = true | { readonly [key: string]: KeySpec };

const PORT: KeySpec = { target: true, published: true, host_ip: true, protocol: true, mode: true, name: true, app_protocol: true };
const MOUNT: KeySpec = {
  type: true,
  source: true,
  target: true,
  read_only: true,
  bind: { create_host_path: true },
  volume: {},
  tmpfs: { size: true },
};
const FILE_REF: KeySpec = { source: true, target: true };

export const SERVICE_KEYS: KeySpec = {
  image: true,
  container_name: true,
  command: true,
  entrypoint: true,
  environment: true,
  env_file: { '[]': { path: true, required: true } },
  ports: { '[]': PORT },
  volumes: { '[]': MOUNT },
  tmpfs: true,
  networks: { '*': { aliases: true } },
  labels: true,
  restart: true,
  healthcheck: { test: true, interval: true, timeout: true, retries: true, start_period: true, disable: true },
  depends_on: { '*': { condition: true } },
  user: true,
  working_dir: true,
  cap_add: true,
  cap_drop: true,
  devices: { '[]': { source: true, target: true, permissions: true } },
  deploy: { resources: { limits: { cpus: true, memory: true, pids: true } } },
  mem_limit: true,
  cpus: true,
  pids_limit: true,
  logging: { driver: true, options: true },
  extra_hosts: true,
  secrets: { '[]': FILE_REF },
  configs: { '[]': FILE_REF },
  stop_grace_period: true,
};

export const TOP_LEVEL_KEYS: KeySpec = {
  version: true,
  name: true,
  services: { '*': SERVICE_KEYS },
  networks: { '*': { name: true, external: true, driver: true, labels: true, internal: true } },
  volumes: { '*': { name: true, external: true, driver: true, driver_opts: true, labels: true } },
  secrets: { '*': { file: true, environment: true } },
  configs: { '*': { file: true, content: true, environment: true } },
};

const REASONS: Record<string, string> = {
  build: 'dockfleet deploys images; build and push the image, then name it in `image`',
  extends: 'write the service out in full, or share settings with an x- anchor and `<<: *anchor`',
  include: 'put every service in the one file',
  profiles: 'every service in a stack is deployed; put optional services in their own stack',
  network_mode: "services join the stack's own networks",
  privileged: 'the project has no field to carry it to the host policy yet',
  external_links: 'use networks instead',
  links: 'services reach each other by name on their shared networks',
  replicas: 'a stack runs one container per service',
  scale: 'a stack runs one container per service',
  external: 'dockfleet carries secrets and configs from files given at deploy',
};

export function findUnsupportedKeys(root: unknown): ComposeProblem[] {
  const problems: ComposeProblem[] = [];
  check(root, TOP_LEVEL_KEYS, [], problems);
  return problems;
}

function check(value: unknown, spec: KeySpec, path: ComposePath, problems: ComposeProblem[]): void {
  if (spec === true || value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    const itemSpec = spec['[]'];
    value.forEach((item, index) => {
      if (item !== null && typeof item === 'object') {
        if (itemSpec === undefined) problems.push({ path: [...path, index], message: 'the long form is not supported here; use the short form' });
        else check(item, itemSpec, [...path, index], problems);
      }
    });
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    if (key.startsWith('x-')) continue;
    const sub = spec[key] ?? spec['*'];
    if (sub === undefined) {
      const reason = REASONS[key];
      problems.push({
        path: [...path, key],
        message: `${JSON.stringify(key)} is not supported by dockfleet${reason === undefined ? '; remove it' : `: ${reason}`}`,
      });
      continue;
    }
    check(item, sub, [...path, key], problems);
  }
}
