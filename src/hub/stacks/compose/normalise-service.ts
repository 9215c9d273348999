/**
 * One validated, interpolated Compose service made into the explicit StackService the agent
 * applies: every field filled, short syntax made long, references to networks, volumes,
 * secrets, configs and other services checked.
 */
import { split as shellSplit } from 'shlex';
import type { StackService } from '../../../protocol/stacks.ts';
import type { ComposePath, ComposeProblem } from './compose-path.ts';
import { byteSize, durationNs, nanoCpus, scalarText, stringList, stringMap, ValueError } from './compose-values.ts';
import { serviceEnvironment } from './service-environment.ts';
import type { EnvironmentContext } from './service-environment.ts';
import { device, extraHosts, longMount, longPort, shortMount, shortPort, shortTmpfs } from './short-syntax.ts';

export interface ServiceContext extends EnvironmentContext {
  services: ReadonlySet<string>;
  networks: ReadonlySet<string>;
  volumes: ReadonlySet<string>;
  secrets: ReadonlySet<string>;
  configs: ReadonlySet<string>;
}

type Raw = Record<string, unknown>;
const RESERVED_LABEL_PREFIXES = ['com.docker.compose.', 'dockfleet.stack.'];
const RESTARTS = ['no', 'always', 'on-failure', 'unless-stopped'] as const;
const CONDITIONS = ['service_started', 'service_healthy', 'service_completed_successfully'] as const;

export function normaliseService(name: string, raw: Raw, ctx: ServiceContext, problems: ComposeProblem[]): { service: StackService; secretValues: Record<string, string> } {
  const path: ComposePath = ['services', name];
  /** Runs one field's reading; a ValueError becomes a problem at `at`, and the field its fallback. */
  const read = <T>(key: string, fallback: T, fn: (value: unknown) => T): T => {
    const value = raw[key];
    if (value === undefined) return fallback;
    try {
      return fn(value);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      problems.push({ path: [...path, key], message: err.message });
      return fallback;
    }
  };
  const each = <T>(key: string, fn: (item: unknown, at: ComposePath) => T[]): T[] => {
    const value = raw[key];
    if (value === undefined || value === null) return [];
    const items = Array.isArray(value) ? value : [value];
    return items.flatMap((item, index) => {
      const at = Array.isArray(value) ? [...path, key, index] : [...path, key];
      try {
        return fn(item, at);
      } catch (err) {
        if (!(err instanceof ValueError)) throw err;
        problems.push({ path: at, message: err.message });
        return [];
      }
    });
  };
  const known = (set: ReadonlySet<string>, kind: string, key: string, at: ComposePath): boolean => {
    if (set.has(key)) return true;
    problems.push({ path: at, message: `${kind} ${JSON.stringify(key)} is not declared in the top-level ${kind}s` });
    return false;
  };

  if (raw.image === undefined) problems.push({ path, message: '`image` is required: dockfleet deploys images and does not build' });
  const env = serviceEnvironment(raw, path, ctx, problems);

  const mounts = [
    ...each('volumes', (item, at) => {
      const mount = typeof item === 'string' ? shortMount(item) : longMount(item as Raw);
      if (mount.type === 'volume' && mount.source !== null && !known(ctx.volumes, 'volume', mount.source, at)) return [];
      return [mount];
    }),
    ...each('tmpfs', (item) => [shortTmpfs(scalarText(item))]),
  ];

  const networks: StackService['networks'] = {};
  const rawNetworks = raw.networks;
  if (rawNetworks === undefined || rawNetworks === null) {
    networks.default = { aliases: [] };
  } else if (Array.isArray(rawNetworks)) {
    rawNetworks.forEach((key: unknown, index) => {
      if (known(ctx.networks, 'network', scalarText(key), [...path, 'networks', index])) networks[scalarText(key)] = { aliases: [] };
    });
  } else {
    for (const [key, value] of Object.entries(rawNetworks as Raw)) {
      if (known(ctx.networks, 'network', key, [...path, 'networks', key])) {
        networks[key] = { aliases: stringList((value as Raw | null)?.aliases) };
      }
    }
  }

  const dependsOn: StackService['dependsOn'] = {};
  const rawDepends = raw.depends_on;
  const dependencies: Array<[string, unknown, ComposePath]> = Array.isArray(rawDepends)
    ? rawDepends.map((key: unknown, index) => [scalarText(key), null, [...path, 'depends_on', index]])
    : Object.entries((rawDepends ?? {}) as Raw).map(([key, value]) => [key, value, [...path, 'depends_on', key]]);
  for (const [key, value, at] of dependencies) {
    if (key === name) problems.push({ path: at, message: 'a service cannot depend on itself' });
    else if (!ctx.services.has(key)) problems.push({ path: at, message: `service ${JSON.stringify(key)} is not in this file` });
    else {
      const condition = (value as Raw | null)?.condition ?? 'service_started';
      dependsOn[key] = { condition: CONDITIONS.find((c) => c === condition) ?? 'service_started' };
    }
  }

  const fileRefs = (key: 'secrets' | 'configs', set: ReadonlySet<string>, defaultTarget: (source: string) => string) =>
    each(key, (item, at) => {
      const long = item !== null && typeof item === 'object' ? (item as Raw) : null;
      const source = scalarText(long === null ? item : long.source);
      if (!known(set, key.slice(0, -1), source, at)) return [];
      const target = long?.target === undefined ? defaultTarget(source) : scalarText(long.target);
      return [{ source, target: key === 'secrets' && !target.startsWith('/') ? `/run/secrets/${target}` : target }];
    });

  const limits = ((raw.deploy as Raw | undefined)?.resources as Raw | undefined)?.limits as Raw | undefined;
  const pick = (a: string, b: string, fn: (v: unknown) => number | null): number | null => {
    const one = read(a, null, fn);
    let two: number | null = null;
    try {
      two = limits?.[b] === undefined ? null : fn(limits[b]);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      problems.push({ path: [...path, 'deploy', 'resources', 'limits', b], message: err.message });
    }
    if (one !== null && two !== null && one !== two) {
      problems.push({ path: [...path, a], message: `${a} and deploy.resources.limits.${b} disagree` });
    }
    return one ?? two;
  };

  const service: StackService = {
    image: read('image', '', (v) => scalarText(v)),
    containerName: read('container_name', null, (v) => scalarText(v)),
    command: read('command', null, words),
    entrypoint: read('entrypoint', null, words),
    environment: env.environment,
    secretEnvironment: env.secretEnvironment,
    ports: each('ports', (item) => (item !== null && typeof item === 'object' ? longPort(item as Raw) : shortPort(item as string | number))),
    mounts,
    networks,
    labels: read('labels', {}, (v) => {
      const labels = stringMap(v);
      const reserved = Object.keys(labels).find((key) => RESERVED_LABEL_PREFIXES.some((prefix) => key.startsWith(prefix)));
      if (reserved !== undefined) throw new ValueError(`label ${JSON.stringify(reserved)} is reserved: Compose and dockfleet set it themselves`);
      return labels;
    }),
    restart: read('restart', 'no', (v) => {
      const restart = RESTARTS.find((r) => r === scalarText(v));
      if (restart === undefined) throw new ValueError(`restart ${JSON.stringify(v)} is not supported (no, always, on-failure, unless-stopped; no retry count)`);
      return restart;
    }),
    healthcheck: read('healthcheck', null, healthcheck),
    dependsOn,
    user: read('user', null, (v) => scalarText(v)),
    workingDir: read('working_dir', null, (v) => scalarText(v)),
    capAdd: read('cap_add', [], stringList),
    capDrop: read('cap_drop', [], stringList),
    devices: each('devices', (item) => [device(item)]),
    resources: {
      memoryBytes: pick('mem_limit', 'memory', byteSize),
      nanoCpus: pick('cpus', 'cpus', nanoCpus),
      pidsLimit: pick('pids_limit', 'pids', (v) => {
        const pids = Number(v);
        if (!Number.isInteger(pids) || pids < -1) throw new ValueError(`${JSON.stringify(v)} is not a pids limit`);
        return pids > 0 ? pids : null;
      }),
    },
    logging: read('logging', null, (v) => {
      const logging = v as Raw;
      if (logging.driver === undefined) throw new ValueError('logging.driver is required');
      return { driver: scalarText(logging.driver), options: stringMap(logging.options) };
    }),
    extraHosts: read('extra_hosts', [], extraHosts),
    secrets: fileRefs('secrets', ctx.secrets, (source) => `/run/secrets/${source}`),
    configs: fileRefs('configs', ctx.configs, (source) => `/${source}`),
    stopGracePeriodNs: read('stop_grace_period', null, durationNs),
  };
  return { service, secretValues: env.secretValues };
}

/** command and entrypoint: a list as written, a string split by shell-words rules. */
function words(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(scalarText);
  try {
    return shellSplit(scalarText(value));
  } catch (err) {
    throw new ValueError(`cannot split into words: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function healthcheck(value: unknown): StackService['healthcheck'] {
  const raw = value as Raw;
  if (raw.disable === true) return { disable: true };
  if (raw.test === undefined) throw new ValueError("healthcheck.test is required (dockfleet does not change the timings of an image's own check)");
  const test = typeof raw.test === 'string' ? ['CMD-SHELL', raw.test] : stringList(raw.test);
  if (test.length === 0) throw new ValueError('healthcheck.test is empty');
  const ns = (key: string): number | null => (raw[key] === undefined ? null : durationNs(raw[key]));
  const retries = raw.retries === undefined ? null : Number(raw.retries);
  if (retries !== null && (!Number.isInteger(retries) || retries < 0)) throw new ValueError('healthcheck.retries must be a whole number');
  return { test, intervalNs: ns('interval'), timeoutNs: ns('timeout'), retries, startPeriodNs: ns('start_period') };
}
