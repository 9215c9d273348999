/**
 * One Compose service → the body of `POST /containers/create`, with Compose's own labels so
 * `docker compose` and Debian's docker-compose v1 take the container for theirs, and the
 * config-hash that decides whether a running container already is what the service asks for
 * (equal config, equal hash; the revision number is not part of it, so an unchanged service is
 * kept across revisions). Secret values go into Env only; the hash sees their digest.
 */
import { createHash } from 'node:crypto';
import { COMPOSE_LABELS, STACK_LABELS, type StackProject, type StackService } from '../../protocol/stacks.ts';
import { hasServiceFiles, serviceFileDigests } from './service-files.ts';
import { canonicalJson } from '../../protocol/canonical-json.ts';

/** What Debian's docker-compose v1 reads (it warns on nothing older than this). */
export const COMPOSE_VERSION_LABEL = '1.29.2';

export interface NetworkRef {
  key: string;
  /** The engine's name. */
  name: string;
  aliases: string[];
}

/** Compose's default network when the file names none. */
export function defaultNetwork(project: StackProject): { name: string; external: boolean; driver: string | null; labels: Record<string, string>; internal: boolean } {
  return project.networks.default ?? { name: `${project.name}_default`, external: false, driver: null, labels: {}, internal: false };
}

/** The networks a service joins, in a stable order, with its service name as an alias on each. */
export function serviceNetworks(project: StackProject, service: string): NetworkRef[] {
  const spec = project.services[service]!;
  const keys = Object.keys(spec.networks).sort();
  if (keys.length === 0) return [{ key: 'default', name: defaultNetwork(project).name, aliases: [service] }];
  return keys.map((key) => {
    const net = key === 'default' ? defaultNetwork(project) : project.networks[key];
    const aliases = [service, ...spec.networks[key]!.aliases.filter((a) => a !== service)];
    return { key, name: net?.name ?? `${project.name}_${key}`, aliases };
  });
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The service's config-hash: its normalised config, the engine names of the networks and
 * volumes it uses, and a digest of the secret values and of the secret and config files it
 * takes (never the values themselves).
 */
export function configHash(project: StackProject, service: string, secretEnv: Readonly<Record<string, string>>, secretFiles: Readonly<Record<string, string>> = {}): string {
  const spec = project.services[service]!;
  const secrets = spec.secretEnvironment
    .slice()
    .sort()
    .map((name) => [name, sha256(`dockfleet-secret\0${secretEnv[name] ?? ''}`)]);
  const volumes = spec.mounts.flatMap((m) => (m.type === 'volume' && m.source !== null ? [project.volumes[m.source]?.name ?? m.source] : []));
  const files = hasServiceFiles(project, service) ? { files: serviceFileDigests(project, service, secretFiles) } : {};
  return sha256(canonicalJson({ service: spec, networks: serviceNetworks(project, service), volumes, secrets, ...files }));
}

export function containerName(project: StackProject, service: string, number: number): string {
  return project.services[service]!.containerName ?? `${project.name}_${service}_${number}`;
}

export interface SpecInput {
  project: StackProject;
  service: string;
  revision: number;
  number: number;
  hash: string;
  /** The image to run: the service's reference, or an image ID pinned by a snapshot. */
  image: string;
  secretEnv: Readonly<Record<string, string>>;
  workingDir: string;
}

function dependsOnLabel(spec: StackService): string {
  return Object.entries(spec.dependsOn)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, d]) => `${name}:${d.condition}:false`)
    .join(',');
}

function healthcheckBody(spec: StackService): Record<string, unknown> | undefined {
  const hc = spec.healthcheck;
  if (hc === null) return undefined;
  if ('disable' in hc) return { Test: ['NONE'] };
  return {
    Test: hc.test,
    ...(hc.intervalNs !== null ? { Interval: hc.intervalNs } : {}),
    ...(hc.timeoutNs !== null ? { Timeout: hc.timeoutNs } : {}),
    ...(hc.retries !== null ? { Retries: hc.retries } : {}),
    ...(hc.startPeriodNs !== null ? { StartPeriod: hc.startPeriodNs } : {}),
  };
}

function mountsBody(project: StackProject, spec: StackService): Array<Record<string, unknown>> {
  return spec.mounts.map((m) => {
    if (m.type === 'volume') {
      return { Type: 'volume', ...(m.source !== null ? { Source: project.volumes[m.source]?.name ?? m.source } : {}), Target: m.target, ReadOnly: m.readOnly };
    }
    if (m.type === 'bind') return { Type: 'bind', Source: m.source, Target: m.target, ReadOnly: m.readOnly };
    return { Type: 'tmpfs', Target: m.target, ...(m.sizeBytes !== null ? { TmpfsOptions: { SizeBytes: m.sizeBytes } } : {}) };
  });
}

/** The labels a stack container carries: the service's own, then Compose's, then dockfleet's. */
export function containerLabels(input: SpecInput): Record<string, string> {
  const spec = input.project.services[input.service]!;
  return {
    ...spec.labels,
    [COMPOSE_LABELS.project]: input.project.name,
    [COMPOSE_LABELS.service]: input.service,
    [COMPOSE_LABELS.containerNumber]: String(input.number),
    [COMPOSE_LABELS.oneoff]: 'False',
    [COMPOSE_LABELS.configHash]: input.hash,
    [COMPOSE_LABELS.version]: COMPOSE_VERSION_LABEL,
    [COMPOSE_LABELS.workingDir]: input.workingDir,
    [COMPOSE_LABELS.dependsOn]: dependsOnLabel(spec),
    [STACK_LABELS.revision]: String(input.revision),
  };
}

/** The `POST /containers/create` body. Secret values are in Env; never log this body. */
export function containerCreateBody(input: SpecInput): Record<string, unknown> {
  const spec = input.project.services[input.service]!;
  const env = [...Object.entries(spec.environment).map(([k, v]) => `${k}=${v}`), ...spec.secretEnvironment.map((name) => `${name}=${input.secretEnv[name] ?? ''}`)];
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of spec.ports) {
    const key = `${p.target}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp, HostPort: p.published === null ? '' : String(p.published) });
  }
  const [first] = serviceNetworks(input.project, input.service);
  const restart = spec.restart === 'no' ? { Name: 'no' } : { Name: spec.restart, ...(spec.restart === 'on-failure' ? { MaximumRetryCount: 0 } : {}) };
  const healthcheck = healthcheckBody(spec);
  return {
    Image: input.image,
    ...(spec.command !== null ? { Cmd: spec.command } : {}),
    ...(spec.entrypoint !== null ? { Entrypoint: spec.entrypoint } : {}),
    Env: env,
    ExposedPorts: exposed,
    Labels: containerLabels(input),
    ...(spec.user !== null ? { User: spec.user } : {}),
    ...(spec.workingDir !== null ? { WorkingDir: spec.workingDir } : {}),
    ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    ...(spec.stopGracePeriodNs !== null ? { StopTimeout: Math.ceil(spec.stopGracePeriodNs / 1e9) } : {}),
    HostConfig: {
      PortBindings: bindings,
      Mounts: mountsBody(input.project, spec),
      RestartPolicy: restart,
      NetworkMode: first!.name,
      ...(spec.capAdd.length ? { CapAdd: spec.capAdd } : {}),
      ...(spec.capDrop.length ? { CapDrop: spec.capDrop } : {}),
      ...(spec.devices.length ? { Devices: spec.devices.map((d) => ({ PathOnHost: d.source, PathInContainer: d.target, CgroupPermissions: d.permissions })) } : {}),
      ...(spec.resources.memoryBytes !== null ? { Memory: spec.resources.memoryBytes } : {}),
      ...(spec.resources.nanoCpus !== null ? { NanoCpus: spec.resources.nanoCpus } : {}),
      ...(spec.resources.pidsLimit !== null ? { PidsLimit: spec.resources.pidsLimit } : {}),
      ...(spec.logging !== null ? { LogConfig: { Type: spec.logging.driver, Config: spec.logging.options } } : {}),
      ...(spec.extraHosts.length ? { ExtraHosts: spec.extraHosts } : {}),
    },
    NetworkingConfig: { EndpointsConfig: { [first!.name]: { Aliases: first!.aliases } } },
  };
}
