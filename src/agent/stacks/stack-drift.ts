/** Drift, pure: a stack's desired revision (with the config-hash and image per service) against
 * the containers the engine holds for its project → what differs. */
import type { DriftItem } from '../../protocol/stacks.ts';
import type { DesiredFile } from './desired-state.ts';
import type { ObservedContainer } from './plan-stack.ts';

export function findDrift(desired: DesiredFile, containers: readonly ObservedContainer[]): DriftItem[] {
  const drift: DriftItem[] = [];
  const services = desired.revision.project.services;
  for (const service of Object.keys(services).sort()) {
    const want = desired.services[service];
    const mine = containers.filter((c) => c.service === service);
    if (mine.length === 0) {
      drift.push({ service, container: null, kind: 'missing', detail: `no container runs service ${service}` });
      continue;
    }
    const match = mine.find((c) => want !== undefined && c.configHash === want.hash && c.imageId === want.imageId);
    if (!match) {
      const c = mine[0]!;
      const what = want && c.configHash !== want.hash ? 'its config-hash differs from the desired revision' : 'it runs another image than the desired revision';
      drift.push({ service, container: c.name, kind: 'changed', detail: `${c.name}: ${what}` });
    } else if (!match.running) {
      drift.push({ service, container: match.name, kind: 'stopped', detail: `${match.name} is not running` });
    }
    for (const extra of mine.filter((c) => c !== (match ?? mine[0]))) {
      drift.push({ service, container: extra.name, kind: 'added', detail: `${extra.name} is an extra container of service ${service}` });
    }
  }
  for (const c of containers.filter((x) => !(x.service in services))) {
    drift.push({
      service: c.service || null,
      container: c.name,
      kind: 'added',
      detail: `${c.name} carries the project label but its service ${JSON.stringify(c.service)} is not in the desired revision`,
    });
  }
  return drift;
}
