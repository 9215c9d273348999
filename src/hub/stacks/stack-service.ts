/**
 * Stacks as durable intent: a deploy validates the Compose file before anything is stored or
 * queued, stores the new revision (secrets sealed) together with its rollout, and starts the
 * rollout; rollback and removal are rollouts too. Each node's state follows its jobs' results
 * and the agents' own stack reports.
 *
 * A selector target is resolved when the deploy is filed: a node that gains the label later
 * gets the stack at the next deploy, not by itself.
 */
import { randomBytes } from 'node:crypto';
import { DockfleetError } from '../../protocol/errors.ts';
import { healthGate, type StacksStatusMessage } from '../../protocol/stacks.ts';
import { parseSelector, type DeployStackBody, type RolloutStarted, type SigningProposal, type StackTarget, type ValidateComposeBody } from '../../protocol/stack-api.ts';
import type { Logger } from '../../lib/logger.ts';
import type { RevisionRecord, RolloutKind, RolloutRecord, StackStore } from '../../store/stack-store.ts';
import type { NodeRegistry } from '../node-registry.ts';
import type { NodeLabels } from './node-labels.ts';
import { RolloutRunner, waves } from './rollout-runner.ts';
import type { ComposeFrontDoor, FileJobInput, SecretSealer, StackJobView, StackJobs } from './stack-ports.ts';

export interface StackServiceDeps {
  store: StackStore;
  registry: NodeRegistry;
  labels: NodeLabels;
  jobs: StackJobs;
  secrets: SecretSealer;
  compose: ComposeFrontDoor;
  log: Logger;
}

/** One reason a Compose file is refused, with its key's path and line. */
export interface ComposeProblem {
  path: string;
  line: number | null;
  message: string;
}

/** A Compose file that does not pass: 400 with every problem's path and line. */
export class ComposeRefused extends DockfleetError {
  readonly errors: ComposeProblem[];
  constructor(errors: ComposeProblem[]) {
    const first = errors[0];
    super('validation_failed', first ? `compose file: ${first.path}${first.line === null ? '' : ` (line ${first.line})`}: ${first.message}` : 'compose file is invalid');
    this.errors = errors;
  }
}

interface SealedSecrets {
  /** The --secret-env-file values as given (the deploy form asks for these names again). */
  secretEnv: Record<string, string>;
  /** Each service variable that takes a secret, with its rendered value: the job's
   * `secrets.env`, looked up by the name the service reads (`PW: "x-${DB_PW}"` → PW). */
  jobEnv?: Record<string, string>;
  secretFiles: Record<string, string>;
  files: Record<string, string>;
}

const newId = (): string => `rol_${randomBytes(12).toString('hex')}`;

export class StackService {
  readonly #deps: StackServiceDeps;
  readonly runner: RolloutRunner;

  constructor(deps: StackServiceDeps) {
    this.#deps = deps;
    this.runner = new RolloutRunner({
      store: deps.store,
      jobs: deps.jobs,
      log: deps.log,
      hooks: { jobFor: (r, n) => this.#jobFor(r, n), filed: (r, j) => this.#filed(r, j), finished: (r, j) => this.#finished(r, j), stopped: (r, n, why) => this.#stopped(r, n, why) },
    });
  }

  /** The problems a deploy of this file would be refused for, without storing or queueing anything. */
  validate(stack: string, body: ValidateComposeBody): ComposeProblem[] {
    const parsed = this.#deps.compose.parse({ stack, yaml: body.compose, env: body.env ?? {}, secretEnv: body.secretEnv ?? {}, files: body.files ?? {} });
    return parsed.ok ? [] : parsed.errors;
  }

  async deploy(stack: string, body: DeployStackBody, who: string): Promise<RolloutStarted> {
    const { store, secrets, compose } = this.#deps;
    const targetSpec = this.#targetSpec(body.target);
    const env = body.env ?? {};
    const secretEnv = body.secretEnv ?? {};
    const files = body.files ?? {};
    const parsed = compose.parse({ stack, yaml: body.compose, env, secretEnv, files });
    if (!parsed.ok) throw new ComposeRefused(parsed.errors);
    const nodes = this.resolveTarget(targetSpec);
    const gate = healthGate.parse(body.gate ?? {});
    const parallel = body.parallel ?? 1;
    const secretDigests: Record<string, string> = {};
    for (const [name, value] of Object.entries(parsed.secretEnv)) secretDigests[name] = secretDigest(secrets, stack, name, value);
    for (const [name, value] of Object.entries(parsed.secretFiles)) secretDigests[`file:${name}`] = secretDigest(secrets, stack, `file:${name}`, value);
    const digest = compose.digest(parsed.project, secretDigests);
    const sealed: SealedSecrets = { secretEnv, jobEnv: parsed.secretEnv, secretFiles: parsed.secretFiles, files };
    const at = Date.now();
    const key = body.idempotencyKey === undefined ? `deploy:${stack}:${randomBytes(12).toString('hex')}` : `deploy:${stack}:client:${body.idempotencyKey}`;
    const build = (revision: number): RevisionRecord => ({
      stack,
      revision,
      compose: body.compose,
      env,
      secretNames: { env: Object.keys(secretEnv).sort(), files: Object.keys(parsed.secretFiles).sort() },
      sealedSecrets: secrets.seal(JSON.stringify(sealed), sealContext(stack, revision)),
      fileNames: Object.keys(files).sort(),
      target: { stack, revision, project: parsed.project, gate, digest },
      targetSpec,
      parallel,
      createdBy: who,
      createdAt: at,
    });
    const { rollout } = await store.createRevision(stack, at, build, (revision) => this.#rollout(stack, 'deploy', revision, nodes, parallel, key, who, at), key);
    return this.#start(rollout, body.sign === true);
  }

  async rollback(stack: string, to: number | undefined, clientKey: string | undefined, who: string, sign = false): Promise<RolloutStarted> {
    const record = await this.#requireStack(stack);
    const revisions = await this.#deps.store.listRevisions(stack);
    const target = to === undefined ? revisions.find((r) => r.revision < record.currentRevision) : revisions.find((r) => r.revision === to);
    if (!target) {
      throw to === undefined
        ? new DockfleetError('invalid_state', `stack ${stack} has no revision before ${record.currentRevision} to go back to`)
        : new DockfleetError('not_found', `stack ${stack} has no revision ${to}`);
    }
    const nodes = await this.#nodesHolding(stack);
    if (nodes.length === 0) throw new DockfleetError('invalid_state', `stack ${stack} is on no node`);
    const key = clientKey === undefined ? `rollback:${stack}:${randomBytes(12).toString('hex')}` : `rollback:${stack}:client:${clientKey}`;
    const rollout = this.#rollout(stack, 'rollback', target.revision, nodes, target.parallel, key, who, Date.now());
    const started = await this.#deps.store.startRollout(rollout, { currentRevision: target.revision });
    return this.#start(started.rollout, sign);
  }

  async remove(stack: string, who: string, sign = false): Promise<RolloutStarted> {
    const record = await this.#requireStack(stack);
    const nodes = await this.#nodesHolding(stack);
    const at = Date.now();
    const rollout = this.#rollout(stack, 'remove', record.currentRevision, nodes, Math.max(1, nodes.length), `remove:${stack}:${randomBytes(12).toString('hex')}`, who, at);
    const started = await this.#deps.store.startRollout(rollout, { removedAt: at });
    if (nodes.length === 0) {
      await this.#deps.store.updateRollout(rollout.id, { state: 'succeeded', finishedAt: at });
      return { stack, revision: record.currentRevision, rollout: rollout.id, jobs: [], ...(sign ? { signing: { kind: 'remove', parallel: rollout.parallel, nodes: [], jobs: [] } } : {}) };
    }
    return this.#start(started.rollout, sign);
  }

  /** The nodes a target names, in order; unknown, revoked or pending nodes are refused. */
  resolveTarget(target: StackTarget): string[] {
    const { registry, labels } = this.#deps;
    if ('selector' in target) {
      const usable = registry
        .list()
        .filter((n) => n.status === 'online' || n.status === 'offline')
        .map((n) => n.name);
      const nodes = labels.select(target.selector.key, target.selector.value, usable);
      if (nodes.length === 0) throw new DockfleetError('validation_failed', `target: no node carries the label ${target.selector.key}=${target.selector.value}`);
      return nodes;
    }
    const names = 'node' in target ? [target.node] : [...new Set(target.nodes)];
    for (const name of names) {
      const status = registry.status(registry.require(name));
      if (status === 'revoked' || status === 'pending') throw new DockfleetError('invalid_state', `target: node ${name} is ${status}`);
    }
    return names;
  }

  /** An agent's report of the stacks it holds: its state, revision and drift win. */
  async applyStatus(node: string, msg: StacksStatusMessage): Promise<void> {
    const { store } = this.#deps;
    for (const s of msg.stacks) {
      if (!(await store.getStack(s.stack))) continue;
      if (s.state === 'removed') await store.deleteStackNode(s.stack, node);
      else await store.upsertStackNode({ stack: s.stack, node, revision: s.revision, state: s.state, drift: s.drift, updatedAt: s.at });
    }
  }

  #targetSpec(target: DeployStackBody['target']): StackTarget {
    if (!('selector' in target) || typeof target.selector !== 'string') return target as StackTarget;
    const selector = parseSelector(target.selector);
    if (!selector) throw new DockfleetError('validation_failed', 'target.selector: expected key=value with a valid label key');
    return { selector };
  }

  async #requireStack(stack: string) {
    const record = await this.#deps.store.getStack(stack);
    if (!record) throw new DockfleetError('not_found', `no stack named ${stack}`);
    return record;
  }

  async #nodesHolding(stack: string): Promise<string[]> {
    return (await this.#deps.store.listStackNodes(stack)).map((n) => n.node);
  }

  #rollout(stack: string, kind: RolloutKind, revision: number, nodes: string[], parallel: number, key: string, who: string, at: number): RolloutRecord {
    return {
      id: newId(),
      stack,
      kind,
      revision,
      nodes,
      parallel,
      wave: 0,
      state: 'running',
      stoppedAtNode: null,
      error: null,
      jobIds: [],
      idempotencyKey: key,
      createdBy: who,
      createdAt: at,
      finishedAt: null,
    };
  }

  async #start(rollout: RolloutRecord, sign = false): Promise<RolloutStarted> {
    // Signed: every job of the rollout is filed first, awaiting its signature (those of later
    // waves held as well), so the operator signs them all now; the runner then finds them by
    // their idempotency keys, wave by wave, as it would have filed them.
    const signing = sign && rollout.state === 'running' ? await this.#fileForSigning(rollout) : undefined;
    const jobs = rollout.state === 'running' ? await this.runner.start(rollout) : rollout.jobIds;
    return { stack: rollout.stack, revision: rollout.revision, rollout: rollout.id, jobs, ...(signing ? { signing } : {}) };
  }

  /** A rollout started elsewhere (a host rebuild) whose jobs its host will only run signed: filed for signing, as #start does. */
  fileForSigning(rollout: RolloutRecord): Promise<SigningProposal> {
    return this.#fileForSigning(rollout);
  }

  async #fileForSigning(rollout: RolloutRecord): Promise<SigningProposal> {
    const { jobs } = this.#deps;
    const proposal: SigningProposal = { kind: rollout.kind, parallel: rollout.parallel, nodes: [...rollout.nodes], jobs: [] };
    const plan = waves(rollout.nodes, rollout.parallel);
    for (let wave = rollout.wave; wave < plan.length; wave++) {
      for (const node of plan[wave]!) {
        const job = await jobs.file({ ...(await this.#jobFor(rollout, node)), signing: { held: wave > rollout.wave } });
        proposal.jobs.push({ id: job.id, node, signedBody: await jobs.signedBody(job.id) });
      }
    }
    return proposal;
  }

  async #jobFor(rollout: RolloutRecord, node: string): Promise<FileJobInput> {
    const base = { kind: rollout.kind, node, stack: rollout.stack, idempotencyKey: jobKey(rollout, node), createdBy: rollout.createdBy };
    if (rollout.kind === 'remove') return { ...base, target: null, secrets: { env: {}, files: {} } };
    const revision = await this.#deps.store.getRevision(rollout.stack, rollout.revision);
    if (!revision) throw new DockfleetError('state_corrupt', `stack ${rollout.stack} revision ${rollout.revision} is missing`);
    const opened = JSON.parse(this.#deps.secrets.openText(revision.sealedSecrets, sealContext(rollout.stack, rollout.revision))) as SealedSecrets;
    return { ...base, target: revision.target, secrets: { env: opened.jobEnv ?? opened.secretEnv, files: opened.secretFiles } };
  }

  /** A signed rollout's later jobs, filed up front and signed, fail now rather than at their deadline. */
  async #stopped(rollout: RolloutRecord, nodes: readonly string[], reason: string): Promise<void> {
    const dropped = await this.#deps.jobs.abandonHeld(
      nodes.map((node) => jobKey(rollout, node)),
      reason,
    );
    if (dropped > 0) this.#deps.log.info({ rollout: rollout.id, stack: rollout.stack, jobs: dropped }, 'dropped the held jobs of a stopped rollout');
  }

  async #filed(rollout: RolloutRecord, job: StackJobView): Promise<void> {
    if (rollout.kind === 'remove' || job.state === 'succeeded' || job.state === 'failed') return;
    const current = (await this.#deps.store.listStackNodes(rollout.stack)).find((n) => n.node === job.node);
    await this.#deps.store.upsertStackNode({ stack: rollout.stack, node: job.node, revision: current?.revision ?? 0, state: 'deploying', drift: current?.drift ?? [], updatedAt: Date.now() });
  }

  async #finished(rollout: RolloutRecord, job: StackJobView): Promise<void> {
    const { store } = this.#deps;
    const at = Date.now();
    if (rollout.kind === 'remove') {
      if (job.state === 'succeeded') return store.deleteStackNode(rollout.stack, job.node);
      const current = (await store.listStackNodes(rollout.stack)).find((n) => n.node === job.node);
      return store.upsertStackNode({ stack: rollout.stack, node: job.node, revision: current?.revision ?? 0, state: 'failed', drift: current?.drift ?? [], updatedAt: at });
    }
    if (job.state === 'succeeded') {
      return store.upsertStackNode({ stack: rollout.stack, node: job.node, revision: rollout.revision, state: 'healthy', drift: [], updatedAt: at });
    }
    // A failed deploy is rolled back whole by the agent: the node is on the revision it had.
    const previous = (await store.listStackNodes(rollout.stack)).find((n) => n.node === job.node)?.revision ?? 0;
    const revision = job.rolledBack && job.revision !== null ? job.revision : previous;
    await store.upsertStackNode({ stack: rollout.stack, node: job.node, revision, state: job.rolledBack ? 'rolled-back' : 'failed', drift: [], updatedAt: at });
  }
}

/** A revision's sealed secrets open only as that revision's. */
const sealContext = (stack: string, revision: number): string => `stack-revision:${stack}:${revision}`;

/** Equal secret values give equal digests (so equal intent), bound to the stack and name. Keyed
 * (HMAC under a key derived from the master key): the digest stored in a revision lets no one who
 * holds only the database test guesses of a weak secret offline. */
function secretDigest(box: SecretSealer, stack: string, name: string, value: string): string {
  return box.digest(`dockfleet.stack-secret.v2\0${stack}\0${name}\0${value}`);
}

/** The idempotency key of a rollout's job for one node: the same when the rollout resumes or files up front. */
function jobKey(rollout: RolloutRecord, node: string): string {
  return `${rollout.idempotencyKey}:${rollout.stack}:${rollout.revision}:${node}`;
}
