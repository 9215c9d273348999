/**
 * The thin executor: carries out planStack's steps for one revision, under the host's policy,
 * then holds the health gate. Nothing changes before every create the plan needs has been
 * judged by the policy, every image resolved and every container name found free. The old
 * revision's containers are set aside, not removed, until the gate passes; a failed gate (or
 * a failed start) restores them from the journal, so the host is always on a whole revision.
 */
import type { StackProject, StackRevision } from '../../protocol/stacks.ts';
import { COMPOSE_LABELS } from '../../protocol/stacks.ts';
import { configHash, containerCreateBody, serviceNetworks } from './container-spec.ts';
import type { DesiredFile, JournalFile, StackStateDir } from './desired-state.ts';
import { waitForCondition, waitForGate, type GateMember } from './health-gate.ts';
import { observeProject } from './observe-stack.ts';
import { planStack, type DesiredService, type ServiceStep, type StackPlan } from './plan-stack.ts';
import { resolveImages } from './resolve-images.ts';
import { hasServiceFiles, serviceFiles } from './service-files.ts';
import { tarFiles } from './tar-files.ts';
import { restoreJournal } from './restore-journal.ts';
import { labelledVolumes, snapshotVolumes, type VolumeToCopy } from './volume-snapshots.ts';
import type { StackEngine } from './stack-engine.ts';
import { refusal, type StackPolicy } from './stack-policy.ts';

export interface ApplyContext {
  engine: StackEngine;
  policy: StackPolicy;
  state: StackStateDir;
  step<T>(name: string, run: () => Promise<T>): Promise<T>;
  log(line: string): void;
  signal: AbortSignal;
}

export interface ApplyRequest {
  jobId: string;
  target: StackRevision;
  secretEnv: Readonly<Record<string, string>>;
  /** Secret files' contents (base64) by name: written into the containers, never to disk by the agent. */
  secretFiles: Readonly<Record<string, string>>;
  /** service → image ID (a rollback to a snapshot runs exactly the images it ran). */
  pinnedImages: Readonly<Record<string, string>>;
}

export type ApplyOutcome =
  | { ok: true; revision: number }
  /** `rolledBack`: something had been changed, and the previous revision was restored. */
  | { ok: false; error: string; revision: number; rolledBack: boolean };

/** Undoes an apply a crash cut short (its journal is still there); true when there was one. */
export async function finishInterrupted(ctx: ApplyContext, stack: string): Promise<boolean> {
  const journal = await ctx.state.read(stack, 'journal');
  if (!journal) return false;
  ctx.log(`an apply of revision ${journal.revision} was cut short; restoring what was there before it`);
  await restoreJournal(ctx.engine, stack, journal, ctx.log);
  await ctx.state.remove(stack, 'journal');
  return true;
}

/** Judges every create, resolves every name: a reason to stop before anything changes, or null. */
async function preflight(ctx: ApplyContext, req: ApplyRequest, plan: StackPlan, bodies: Map<string, Record<string, unknown>>): Promise<string | null> {
  const project = req.target.project;
  for (const net of plan.createNetworks) {
    const refused = await refusal(ctx.policy, 'POST', '/networks/create', networkBody(req, net.key, net.name));
    if (refused) return `network ${net.key}: ${refused}`;
  }
  for (const vol of plan.createVolumes) {
    const refused = await refusal(ctx.policy, 'POST', '/volumes/create', volumeBody(req, vol.key, vol.name));
    if (refused) return `volume ${vol.key}: ${refused}`;
  }
  for (const step of plan.services) {
    if (step.action.kind === 'keep') continue;
    if (hasServiceFiles(project, step.service)) {
      const files = serviceFiles(project, step.service, req.secretFiles);
      if (!files.ok) return files.error;
      const no = await refusal(ctx.policy, 'PUT', `/containers/${encodeURIComponent(step.name)}/archive?path=%2F`);
      if (no) return `service ${step.service}: its secrets and configs files are written into the container with PUT /containers/…/archive, and ${no}`;
    }
    const refused = await refusal(ctx.policy, 'POST', `/containers/create?name=${encodeURIComponent(step.name)}`, bodies.get(step.service));
    if (refused) return `service ${step.service}: ${refused}`;
    const holder = await ctx.engine.inspect('containers', step.name);
    const ours = step.action.kind === 'stop-first' && step.action.old.some((c) => c.id === holder?.Id);
    if (holder && !ours) {
      const owner = holder.Config?.Labels?.[COMPOSE_LABELS.project];
      return `service ${step.service}: the container name ${step.name} is taken by ${owner === project.name ? 'a container of this stack the plan does not replace' : 'a container outside this stack'}`;
    }
  }
  return null;
}

function networkBody(req: ApplyRequest, key: string, name: string): Record<string, unknown> {
  const net = req.target.project.networks[key];
  return {
    Name: name,
    ...(net?.driver ? { Driver: net.driver } : {}),
    Internal: net?.internal ?? false,
    Labels: { ...net?.labels, [COMPOSE_LABELS.project]: req.target.project.name, [COMPOSE_LABELS.network]: key, [COMPOSE_LABELS.version]: '1.29.2' },
  };
}

function volumeBody(req: ApplyRequest, key: string, name: string): Record<string, unknown> {
  const vol = req.target.project.volumes[key]!;
  return {
    Name: name,
    ...(vol.driver ? { Driver: vol.driver } : {}),
    DriverOpts: vol.driverOpts,
    Labels: { ...vol.labels, [COMPOSE_LABELS.project]: req.target.project.name, [COMPOSE_LABELS.volume]: key, [COMPOSE_LABELS.version]: '1.29.2' },
  };
}

export async function applyStack(ctx: ApplyContext, req: ApplyRequest, workingDir: string): Promise<ApplyOutcome> {
  const { project, stack, revision, gate } = req.target;
  const stored = await ctx.state.read(stack, 'desired');
  // What the host holds: nothing after a removal or a first deploy that failed.
  const previous = stored && stored.state !== 'removed' && !(stored.state === 'failed' && Object.keys(stored.services).length === 0) ? stored : null;
  const before = previous?.revision.revision ?? 0;
  // A deploy that fails on a host holding nothing still leaves a record, so the stack reads failed.
  const refusedEarly = async (error: string): Promise<ApplyOutcome> => {
    if (!previous) await ctx.state.write(stack, 'desired', { v: 1, revision: req.target, services: {}, state: 'failed', updatedAt: Date.now() });
    return { ok: false, error, revision: before, rolledBack: false };
  };
  const images = await ctx.step('resolve images', () => resolveImages(ctx.engine, ctx.policy, project, req.pinnedImages, ctx.log));
  if (!images.ok) return refusedEarly(images.error);
  const desired = new Map<string, DesiredService>();
  for (const service of Object.keys(project.services)) {
    desired.set(service, { hash: configHash(project, service, req.secretEnv, req.secretFiles), imageId: images.ids.get(service)! });
  }
  let plan: StackPlan;
  try {
    plan = planStack(project, desired, await observeProject(ctx.engine, stack));
  } catch (err) {
    return refusedEarly((err as Error).message);
  }
  const bodies = new Map<string, Record<string, unknown>>();
  for (const step of plan.services) {
    bodies.set(
      step.service,
      containerCreateBody({
        project,
        service: step.service,
        revision,
        number: step.number,
        hash: desired.get(step.service)!.hash,
        image: images.ids.get(step.service)!,
        secretEnv: req.secretEnv,
        workingDir,
      }),
    );
  }
  const refused = await ctx.step('check the host policy', () => preflight(ctx, req, plan, bodies));
  if (refused) return refusedEarly(refused);

  if (previous && previous.revision.revision !== revision) {
    const imagesOf = Object.fromEntries(Object.entries(previous.services).map(([s, r]) => [s, r.imageId]));
    await ctx.state.write(stack, 'snapshot', { v: 1, revision: previous.revision, images: imagesOf, takenAt: Date.now() });
  }
  const journal: JournalFile = { v: 1, jobId: req.jobId, revision, retired: [], created: { containers: [], networks: [], volumes: [] }, volumes: [], paused: [] };
  const note = (): Promise<void> => ctx.state.write(stack, 'journal', journal);
  await note();
  const snapshotFailed = previous && previous.revision.revision !== revision ? await takeVolumeSnapshots(ctx, stack, project, previous, plan, images.ids, journal, note) : null;
  if (snapshotFailed) {
    for (const id of journal.paused) await ctx.engine.call('POST', `/containers/${id}/unpause`).catch(() => undefined);
    await ctx.state.remove(stack, 'journal');
    return { ok: false, error: snapshotFailed, revision: before, rolledBack: false };
  }
  if (previous) await ctx.state.write(stack, 'desired', { ...previous, state: 'deploying', updatedAt: Date.now() });

  const fail = async (error: string): Promise<ApplyOutcome> => {
    await ctx.step('restore the previous revision', async () => {
      await restoreJournal(ctx.engine, stack, journal, ctx.log);
      await ctx.state.remove(stack, 'journal');
    });
    if (previous) await ctx.state.write(stack, 'desired', { ...previous, state: 'rolled-back', updatedAt: Date.now() });
    else await ctx.state.write(stack, 'desired', { v: 1, revision: req.target, services: {}, state: 'failed', updatedAt: Date.now() });
    return { ok: false, error, revision: before, rolledBack: previous !== null };
  };

  try {
    for (const net of plan.createNetworks) {
      journal.created.networks.push(net.name);
      await note();
      await ctx.engine.must('POST', '/networks/create', networkBody(req, net.key, net.name));
    }
    for (const vol of plan.createVolumes) {
      journal.created.volumes.push(vol.name);
      await note();
      await ctx.engine.must('POST', '/volumes/create', volumeBody(req, vol.key, vol.name));
    }
    const current = new Map<string, string>();
    for (const step of plan.services) {
      const failure = await ctx.step(`service ${step.service}: ${step.action.kind}`, () => applyService(ctx, req, step, bodies.get(step.service)!, current, journal, note));
      if (failure) return await fail(failure);
    }
    const members: GateMember[] = plan.services.map((s) => ({ service: s.service, id: current.get(s.service)!, oneShotOk: project.services[s.service]!.restart === 'no' }));
    const verdict = await ctx.step('health gate', () => waitForGate(ctx.engine, members, gate, ctx.signal));
    if (!verdict.ok) {
      const lines = await ctx.engine.logTail(verdict.id, 20).catch(() => []);
      return await fail(`service ${verdict.service} failed the health gate: ${verdict.reason}${lines.length ? `\nlast log lines of ${verdict.service}:\n${lines.join('\n')}` : ''}`);
    }
  } catch (err) {
    return await fail((err as Error).message);
  }

  await ctx.step('retire the previous revision', async () => {
    for (const old of [...journal.retired.map((r) => r.id), ...plan.removeContainers.map((c) => c.id)]) {
      const answer = await ctx.engine.call('DELETE', `/containers/${old}?force=1`);
      if (answer.status !== 204 && answer.status !== 404) ctx.log(`could not remove an old container: ${answer.message}`);
    }
  });
  await ctx.state.write(stack, 'desired', {
    v: 1,
    revision: req.target,
    state: 'healthy',
    updatedAt: Date.now(),
    services: Object.fromEntries([...desired].map(([s, d]) => [s, { hash: d.hash, imageId: d.imageId }])),
  });
  await ctx.state.remove(stack, 'journal');
  return { ok: true, revision };
}

/**
 * Copies the named volumes of the labelled services this plan replaces (labelled in the old
 * revision or the new), before anything changes; the reason it could not, or null.
 */
async function takeVolumeSnapshots(
  ctx: ApplyContext,
  stack: string,
  target: StackProject,
  previous: DesiredFile,
  plan: StackPlan,
  images: ReadonlyMap<string, string>,
  journal: JournalFile,
  note: () => Promise<void>,
): Promise<string | null> {
  const replaced = plan.services.filter((s) => s.action.kind === 'start-first' || s.action.kind === 'stop-first').map((s) => s.service);
  const imageOf = (service: string): string => previous.services[service]?.imageId ?? images.get(service)!;
  const volumes = new Map<string, VolumeToCopy>();
  for (const p of [target, previous.revision.project]) {
    for (const v of labelledVolumes(p, replaced, imageOf)) if (!volumes.has(v.volume)) volumes.set(v.volume, v);
  }
  if (volumes.size === 0) return null;
  try {
    await ctx.step('snapshot volumes', () =>
      snapshotVolumes(
        {
          engine: ctx.engine,
          policy: ctx.policy,
          log: ctx.log,
          paused: async (ids) => {
            journal.paused = ids;
            await note();
          },
          copied: async (copy) => {
            journal.volumes.push(copy);
            await note();
          },
        },
        stack,
        previous.revision.revision,
        [...volumes.values()],
      ),
    );
    return null;
  } catch (err) {
    return `could not snapshot the volumes before the deploy, so nothing was changed: ${(err as Error).message}`;
  }
}

/** One service: wait for its dependencies, set the old container aside, create and start the new. */
async function applyService(
  ctx: ApplyContext,
  req: ApplyRequest,
  step: ServiceStep,
  body: Record<string, unknown>,
  current: Map<string, string>,
  journal: JournalFile,
  note: () => Promise<void>,
): Promise<string | null> {
  const { project, revision, gate } = req.target;
  for (const dep of step.waitFor) {
    const id = current.get(dep.service)!;
    const verdict = await waitForCondition(ctx.engine, { service: dep.service, id, oneShotOk: false }, dep.condition, gate.deadlineMs, ctx.signal);
    if (!verdict.ok) return `service ${step.service} depends on ${dep.service}, and ${dep.service} failed: ${verdict.reason}`;
  }
  const action = step.action;
  if (action.kind === 'keep') {
    current.set(step.service, action.container.id);
    return null;
  }
  if (action.kind === 'start-first' || action.kind === 'stop-first') {
    for (const old of action.old) {
      const renamedTo = action.kind === 'stop-first' && action.renameOld ? `${old.name}_dfold_${revision}` : null;
      journal.retired.push({ id: old.id, name: old.name, renamedTo, wasRunning: old.running });
      await note();
      if (action.kind === 'stop-first' && old.running) await ctx.engine.must('POST', `/containers/${old.id}/stop`, undefined, 120_000);
      if (renamedTo) await ctx.engine.must('POST', `/containers/${old.id}/rename?name=${encodeURIComponent(renamedTo)}`);
    }
  }
  journal.created.containers.push(step.name);
  await note();
  const created = (await ctx.engine.must('POST', `/containers/create?name=${encodeURIComponent(step.name)}`, body)) as { Id: string };
  current.set(step.service, created.Id);
  for (const net of serviceNetworks(project, step.service).slice(1)) {
    await ctx.engine.must('POST', `/networks/${encodeURIComponent(net.name)}/connect`, { Container: created.Id, EndpointConfig: { Aliases: net.aliases } });
  }
  if (hasServiceFiles(project, step.service)) {
    const files = serviceFiles(project, step.service, req.secretFiles);
    if (!files.ok) return files.error;
    const no = await refusal(ctx.policy, 'PUT', `/containers/${created.Id}/archive?path=%2F`);
    if (no) return `service ${step.service}: ${no}`;
    const put = await ctx.engine.putArchive(created.Id, '/', await tarFiles(files.files));
    if (put.status !== 200) return `service ${step.service}: its secrets and configs files could not be written (${put.status}): ${put.message}`;
  }
  const refused = await refusal(ctx.policy, 'POST', `/containers/${created.Id}/start`);
  if (refused) return `service ${step.service}: ${refused}`;
  const started = await ctx.engine.call('POST', `/containers/${created.Id}/start`);
  if (started.status !== 204 && started.status !== 304) return `service ${step.service} could not start: ${started.message}`;
  ctx.log(`started ${step.name}`);
  return null;
}
