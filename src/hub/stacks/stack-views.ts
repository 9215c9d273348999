/** What the API shows of stacks: lists, one stack with its nodes and rollouts, revision
 * history and one revision. Secret values never appear: secret variables and files by name. */
import { DockfleetError } from '../../protocol/errors.ts';
import type { RolloutView, StackListItem, StackNodeView } from '../../protocol/stack-api.ts';
import type { RevisionRecord, RolloutRecord, StackStore } from '../../store/stack-store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function rolloutView(r: RolloutRecord): RolloutView {
  return {
    id: r.id,
    stack: r.stack,
    kind: r.kind,
    revision: r.revision,
    nodes: r.nodes,
    parallel: r.parallel,
    state: r.state,
    stoppedAtNode: r.stoppedAtNode,
    error: r.error,
    jobs: r.jobIds,
    createdBy: r.createdBy,
    createdAt: iso(r.createdAt)!,
    finishedAt: iso(r.finishedAt),
  };
}

function revisionSummary(r: RevisionRecord) {
  return {
    revision: r.revision,
    createdAt: iso(r.createdAt),
    createdBy: r.createdBy,
    digest: r.target.digest,
    target: r.targetSpec,
    parallel: r.parallel,
    gate: r.target.gate,
    services: Object.keys(r.target.project.services).sort(),
    env: r.env,
    secretEnv: r.secretNames.env,
    secretFiles: r.secretNames.files,
    files: r.fileNames,
  };
}

export class StackViews {
  readonly #store: StackStore;

  constructor(store: StackStore) {
    this.#store = store;
  }

  /** `[{name, revision, nodes:[{node, revision, status}]}]` (CONTRACT.md); removed stacks drop out once no node holds them. */
  async list(): Promise<StackListItem[]> {
    const nodes = await this.#store.listStackNodes();
    const out: StackListItem[] = [];
    for (const s of await this.#store.listStacks()) {
      const held = nodes.filter((n) => n.stack === s.name);
      if (s.removedAt !== null && held.length === 0) continue;
      out.push({ name: s.name, revision: s.currentRevision, nodes: held.map((n) => ({ node: n.node, revision: n.revision, status: n.state })) });
    }
    return out;
  }

  async get(name: string) {
    const stack = await this.#store.getStack(name);
    if (!stack) throw new DockfleetError('not_found', `no stack named ${name}`);
    const nodes: StackNodeView[] = (await this.#store.listStackNodes(name)).map((n) => ({
      node: n.node,
      revision: n.revision,
      status: n.state,
      drift: n.drift,
      updatedAt: iso(n.updatedAt)!,
    }));
    const rollouts = (await this.#store.listRollouts(name, 20)).map(rolloutView);
    return {
      name,
      revision: stack.currentRevision,
      createdAt: iso(stack.createdAt),
      removedAt: iso(stack.removedAt),
      drifted: nodes.some((n) => n.status === 'drifted' || n.drift.length > 0),
      nodes,
      rollouts,
    };
  }

  async history(name: string) {
    if (!(await this.#store.getStack(name))) throw new DockfleetError('not_found', `no stack named ${name}`);
    return (await this.#store.listRevisions(name)).map(revisionSummary);
  }

  async revision(name: string, revision: number) {
    const r = await this.#store.getRevision(name, revision);
    if (!r) throw new DockfleetError('not_found', `stack ${name} has no revision ${revision}`);
    return { ...revisionSummary(r), compose: r.compose, project: r.target.project };
  }

  async rollout(name: string, id: string): Promise<RolloutView> {
    const r = await this.#store.getRollout(id);
    if (!r || r.stack !== name) throw new DockfleetError('not_found', `stack ${name} has no rollout ${id}`);
    return rolloutView(r);
  }
}
