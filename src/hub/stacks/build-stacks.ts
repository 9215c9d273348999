/** Assembles the hub's stack room: node labels (shown in node views), the stack service with
 * its rollout runner (running rollouts resumed), the agents' stack reports, and the views the
 * REST routes use. */
import type { Logger } from '../../lib/logger.ts';
import type { StacksStatusMessage } from '../../protocol/stacks.ts';
import type { StackStore } from '../../store/stack-store.ts';
import type { StackRoutesDeps } from '../api/stack-routes.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { parseCompose, projectDigest } from './compose/parse-compose.ts';
import { NodeLabels } from './node-labels.ts';
import type { SecretSealer, StackJobs } from './stack-ports.ts';
import { StackService } from './stack-service.ts';
import { StackViews } from './stack-views.ts';

export interface HubStacks {
  routes: StackRoutesDeps;
  service: StackService;
  close(): Promise<void>;
}

export async function buildStacks(deps: {
  store: StackStore;
  registry: NodeRegistry;
  jobs: StackJobs;
  secrets: SecretSealer;
  log: Logger;
  /** Where the agents' stack reports arrive (hub/jobs/stack-status-feed.ts). */
  onStatus?: (handler: (node: string, message: StacksStatusMessage) => void) => void;
}): Promise<HubStacks> {
  const { store, registry, log } = deps;
  const labels = new NodeLabels(store);
  await labels.load();
  registry.showLabels((name) => labels.of(name));
  const service = new StackService({
    store,
    registry,
    labels,
    jobs: deps.jobs,
    secrets: deps.secrets,
    log,
    compose: { parse: parseCompose, digest: projectDigest },
  });
  deps.onStatus?.((node, message) => {
    void service.applyStatus(node, message).catch((err: unknown) => log.error({ err, node }, 'could not record a stack report'));
  });
  await service.runner.resumeAll();
  return {
    routes: { registry, labels, stacks: service, views: new StackViews(store) },
    service,
    close: () => service.runner.close(),
  };
}
