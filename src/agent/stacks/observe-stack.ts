/** What the engine holds for one stack: its containers (by Compose's project label), and the
 * networks and volumes that exist, in the planner's terms. */
import { COMPOSE_LABELS } from '../../protocol/stacks.ts';
import type { ObservedContainer, ObservedProject } from './plan-stack.ts';
import type { StackEngine } from './stack-engine.ts';

interface ListedContainer {
  Id: string;
  Names?: string[];
  ImageID?: string;
  State?: string;
  Labels?: Record<string, string> | null;
}

export async function observeContainers(engine: StackEngine, stack: string): Promise<ObservedContainer[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${COMPOSE_LABELS.project}=${stack}`] }));
  const listed = (await engine.must('GET', `/containers/json?all=1&filters=${filters}`)) as ListedContainer[];
  return listed
    .filter((c) => c.Labels?.[COMPOSE_LABELS.oneoff] !== 'True')
    .map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      service: c.Labels?.[COMPOSE_LABELS.service] ?? '',
      number: Number(c.Labels?.[COMPOSE_LABELS.containerNumber] ?? 0) || 0,
      configHash: c.Labels?.[COMPOSE_LABELS.configHash] ?? '',
      imageId: c.ImageID ?? '',
      running: c.State === 'running' || c.State === 'restarting',
    }));
}

export async function observeProject(engine: StackEngine, stack: string): Promise<ObservedProject> {
  const [containers, networks, volumes] = await Promise.all([
    observeContainers(engine, stack),
    engine.must('GET', '/networks') as Promise<Array<{ Name: string }>>,
    engine.must('GET', '/volumes') as Promise<{ Volumes: Array<{ Name: string }> | null }>,
  ]);
  return { containers, networks: networks.map((n) => n.Name), volumes: (volumes.Volumes ?? []).map((v) => v.Name) };
}
