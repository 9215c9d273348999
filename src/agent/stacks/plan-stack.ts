/**
 * The pure planner (level-triggered, like docker/compose's convergence): the project a stack
 * should be and what the engine holds for it now → the steps that make it so. It touches
 * nothing; the executor (apply-stack.ts) carries the steps out, and running the planner again
 * after a crash plans only what is still missing.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import { STACK_LABELS, type StackProject } from '../../protocol/stacks.ts';
import { containerName, defaultNetwork, serviceNetworks } from './container-spec.ts';

/** One container of the project as the engine shows it. */
export interface ObservedContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  service: string;
  number: number;
  configHash: string;
  /** The image ID it runs. */
  imageId: string;
  running: boolean;
}

export interface ObservedProject {
  containers: ObservedContainer[];
  /** Engine names of the networks and volumes that exist. */
  networks: string[];
  volumes: string[];
}

export interface DesiredService {
  hash: string;
  /** The image ID the service's reference resolves to on this host. */
  imageId: string;
}

export type ServiceAction =
  /** The running container already is the service. */
  | { kind: 'keep'; container: ObservedContainer }
  | { kind: 'create' }
  /** Start the new container beside the old ones, retire the old after the gate. */
  | { kind: 'start-first'; old: ObservedContainer[] }
  /** A fixed name, a fixed host port or snapshotted volumes: stop the old ones first. */
  | { kind: 'stop-first'; old: ObservedContainer[]; renameOld: boolean };

export interface ServiceStep {
  service: string;
  action: ServiceAction;
  /** For a new container: its number and name. */
  number: number;
  name: string;
  /** Dependencies to wait for before this service's container is started. */
  waitFor: Array<{ service: string; condition: 'service_started' | 'service_healthy' | 'service_completed_successfully' }>;
}

export interface StackPlan {
  createNetworks: Array<{ key: string; name: string }>;
  createVolumes: Array<{ key: string; name: string }>;
  /** In dependency order. */
  services: ServiceStep[];
  /** Containers of services the project no longer has, or extra copies: removed after the gate. */
  removeContainers: ObservedContainer[];
}

/** Services in dependency order (depends_on first); a cycle or an unknown dependency is an error. */
export function dependencyOrder(project: StackProject): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new DockfleetError('validation_failed', `services depend on each other in a cycle: ${[...path, name].join(' → ')}`);
    const spec = project.services[name];
    if (!spec) throw new DockfleetError('validation_failed', `service ${path.at(-1) ?? '?'} depends on ${name}, which the project does not have`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(spec.dependsOn).sort()) visit(dep, [...path, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(project.services).sort()) visit(name, []);
  return order;
}

/**
 * Whether two copies of the service can run at once: no fixed name and no fixed host port (an
 * ephemeral one, `published: null`, lets each copy have its own). A service whose volumes are
 * snapshotted never runs twice: two copies would write the same data.
 */
export function canStartFirst(project: StackProject, service: string): boolean {
  const spec = project.services[service]!;
  return spec.containerName === null && spec.ports.every((p) => p.published === null) && spec.labels[STACK_LABELS.snapshotVolumes] !== 'true';
}

export function planStack(project: StackProject, desired: ReadonlyMap<string, DesiredService>, observed: ObservedProject): StackPlan {
  const order = dependencyOrder(project);
  const have = new Set(observed.networks);
  const createNetworks: StackPlan['createNetworks'] = [];
  const used = new Set(order.flatMap((s) => serviceNetworks(project, s).map((n) => n.key)));
  for (const key of [...used].sort()) {
    const net = key === 'default' ? defaultNetwork(project) : project.networks[key];
    if (!net) throw new DockfleetError('validation_failed', `a service uses network ${key}, which the project does not define`);
    if (!net.external && !have.has(net.name)) createNetworks.push({ key, name: net.name });
  }
  const haveVolumes = new Set(observed.volumes);
  const createVolumes = Object.entries(project.volumes)
    .filter(([, v]) => !v.external && !haveVolumes.has(v.name))
    .map(([key, v]) => ({ key, name: v.name }))
    .sort((a, b) => a.key.localeCompare(b.key));

  const byService = new Map<string, ObservedContainer[]>();
  for (const c of observed.containers) byService.set(c.service, [...(byService.get(c.service) ?? []), c]);
  const removeContainers = observed.containers.filter((c) => !(c.service in project.services));

  const services = order.map((service): ServiceStep => {
    const want = desired.get(service);
    if (!want) throw new DockfleetError('internal', `no config-hash computed for service ${service}`);
    const current = (byService.get(service) ?? []).slice().sort((a, b) => a.number - b.number);
    const waitFor = Object.entries(project.services[service]!.dependsOn).map(([dep, d]) => ({ service: dep, condition: d.condition }));
    const good = current.find((c) => c.running && c.configHash === want.hash && c.imageId === want.imageId);
    if (good) {
      removeContainers.push(...current.filter((c) => c !== good));
      return { service, action: { kind: 'keep', container: good }, number: good.number, name: good.name, waitFor };
    }
    const taken = new Set(current.map((c) => c.number));
    let number = 1;
    while (taken.has(number)) number += 1;
    const fixedName = project.services[service]!.containerName !== null;
    const name = containerName(project, service, number);
    if (current.length === 0) return { service, action: { kind: 'create' }, number: 1, name: containerName(project, service, 1), waitFor };
    if (canStartFirst(project, service)) return { service, action: { kind: 'start-first', old: current }, number, name, waitFor };
    return { service, action: { kind: 'stop-first', old: current, renameOld: fixedName }, number, name, waitFor };
  });
  return { createNetworks, createVolumes, services, removeContainers };
}
