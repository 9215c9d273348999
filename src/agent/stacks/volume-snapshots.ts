/**
 * Volume snapshots for services labelled `dockfleet.snapshot-volumes=true`: before a deploy
 * changes anything, each of their named volumes is copied to `VOLUME_snapshot_rREV` (REV: the
 * revision the host is on), and a failed gate copies it back before the old containers start
 * again. Only the newest snapshot of each volume is kept.
 *
 * The copy is a helper container from the service's own image (the one its old container
 * runs) with both volumes mounted, running `sh` and `cp -a` as root with no network: it goes
 * through the Engine API only, the host policy judges it like any create, and it needs
 * neither the `archive` section nor a second image. Copying back empties the volume first, so
 * files the failed revision added are gone, not only overwritten. The containers of the stack
 * that use the volume are paused while it is copied (a crash-consistent copy) and stopped
 * while it is restored. Needs `sh`, `rm` and `cp` in the image; one without them fails the
 * deploy before anything changed, naming the service.
 */
import { randomBytes } from 'node:crypto';
import { COMPOSE_LABELS, STACK_LABELS, type StackProject } from '../../protocol/stacks.ts';
import type { StackEngine } from './stack-engine.ts';
import { refusal, type StackPolicy } from './stack-policy.ts';

export const SNAPSHOT_LABELS = {
  of: 'dockfleet.snapshot.of',
  revision: 'dockfleet.snapshot.revision',
  stack: 'dockfleet.stack',
  helper: 'dockfleet.helper',
} as const;

const COPY_TIMEOUT_MS = 30 * 60_000;
const FROM = '/dockfleet-from';
const TO = '/dockfleet-to';
const COPY_SCRIPT = `set -e; cd ${TO}; rm -rf ./..?* ./.[!.]* ./*; cp -a ${FROM}/. ${TO}/`;

/** One finished copy: `snapshot` holds what `volume` held; `image` can copy it back. */
export interface VolumeCopy {
  volume: string;
  snapshot: string;
  image: string;
}

/** A volume to copy and the image of a service that mounts it. */
export interface VolumeToCopy {
  volume: string;
  service: string;
  image: string;
}

/** The named volumes (engine names) of the labelled services among `services`, each once. */
export function labelledVolumes(project: StackProject, services: Iterable<string>, imageOf: (service: string) => string): VolumeToCopy[] {
  const out = new Map<string, VolumeToCopy>();
  for (const service of services) {
    const spec = project.services[service];
    if (spec?.labels[STACK_LABELS.snapshotVolumes] !== 'true') continue;
    for (const m of spec.mounts) {
      if (m.type !== 'volume' || m.source === null) continue;
      const volume = project.volumes[m.source]?.name ?? m.source;
      if (!out.has(volume)) out.set(volume, { volume, service, image: imageOf(service) });
    }
  }
  return [...out.values()].sort((a, b) => a.volume.localeCompare(b.volume));
}

export function snapshotName(volume: string, revision: number): string {
  return `${volume}_snapshot_r${revision}`;
}

function helperBody(stack: string, image: string, from: string, to: string): Record<string, unknown> {
  return {
    Image: image,
    Entrypoint: ['sh', '-c', COPY_SCRIPT],
    Cmd: [],
    User: '0:0',
    WorkingDir: '/',
    NetworkDisabled: true,
    Labels: { [SNAPSHOT_LABELS.helper]: 'volume-copy', [SNAPSHOT_LABELS.stack]: stack },
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [
        { Type: 'volume', Source: from, Target: FROM, ReadOnly: true, VolumeOptions: { NoCopy: true } },
        { Type: 'volume', Source: to, Target: TO, ReadOnly: false, VolumeOptions: { NoCopy: true } },
      ],
    },
  };
}

/** Running containers of the stack that mount `volume`. */
async function usersOf(engine: StackEngine, stack: string, volume: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ volume: [volume], status: ['running'], label: [`${COMPOSE_LABELS.project}=${stack}`] }));
  return ((await engine.must('GET', `/containers/json?filters=${filters}`)) as Array<{ Id: string }>).map((c) => c.Id);
}

/** Helper containers a crash left behind. */
async function removeStaleHelpers(engine: StackEngine, stack: string): Promise<void> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${SNAPSHOT_LABELS.helper}=volume-copy`, `${SNAPSHOT_LABELS.stack}=${stack}`] }));
  for (const c of (await engine.must('GET', `/containers/json?all=1&filters=${filters}`)) as Array<{ Id: string }>) {
    await engine.call('DELETE', `/containers/${c.Id}?force=1`);
  }
}

/** One copy through a helper container; throws with the reason (and the helper's output). */
async function copyVolume(engine: StackEngine, policy: StackPolicy | null, stack: string, image: string, from: string, to: string): Promise<void> {
  const body = helperBody(stack, image, from, to);
  const name = `${stack}_dfcopy_${randomBytes(4).toString('hex')}`;
  const path = `/containers/create?name=${name}`;
  if (policy) {
    const refused = await refusal(policy, 'POST', path, body);
    if (refused) throw new Error(`copying volume ${from}: ${refused}`);
  }
  const { Id: id } = (await engine.must('POST', path, body)) as { Id: string };
  try {
    if (policy) {
      const refused = await refusal(policy, 'POST', `/containers/${id}/start`);
      if (refused) throw new Error(`copying volume ${from}: ${refused}`);
    }
    const started = await engine.call('POST', `/containers/${id}/start`);
    if (started.status !== 204) throw new Error(`copying volume ${from}: the helper container could not start (does the image have sh?): ${started.message}`);
    const waited = (await engine.must('POST', `/containers/${id}/wait`, undefined, COPY_TIMEOUT_MS)) as { StatusCode?: number };
    const code = Number(waited?.StatusCode ?? -1);
    if (code !== 0) {
      const lines = await engine.logTail(id, 10).catch(() => []);
      const hint = code === 127 || code === 126 ? ' (the image needs sh, rm and cp)' : '';
      throw new Error(`copying volume ${from} to ${to} failed with exit code ${code}${hint}${lines.length ? `: ${lines.join(' | ').slice(0, 500)}` : ''}`);
    }
  } finally {
    await engine.call('DELETE', `/containers/${id}?force=1`).catch(() => undefined);
  }
}

export interface SnapshotContext {
  engine: StackEngine;
  policy: StackPolicy;
  log(line: string): void;
  /** Told before each pause (so a crash can unpause) and after each finished copy. */
  paused(ids: string[]): Promise<void>;
  copied(copy: VolumeCopy): Promise<void>;
}

/** Copies each volume to its snapshot for `revision`, then drops that volume's older snapshots. */
export async function snapshotVolumes(ctx: SnapshotContext, stack: string, revision: number, volumes: readonly VolumeToCopy[]): Promise<void> {
  const { engine, policy } = ctx;
  await removeStaleHelpers(engine, stack);
  for (const v of volumes) {
    if (!(await engine.inspect('volumes', v.volume))) continue;
    const snapshot = snapshotName(v.volume, revision);
    const create = { Name: snapshot, Labels: { [SNAPSHOT_LABELS.of]: v.volume, [SNAPSHOT_LABELS.revision]: String(revision), [SNAPSHOT_LABELS.stack]: stack } };
    const refused = await refusal(policy, 'POST', '/volumes/create', create);
    if (refused) throw new Error(`snapshot of volume ${v.volume}: ${refused}`);
    await engine.must('POST', '/volumes/create', create);
    const users = await usersOf(engine, stack, v.volume);
    for (const id of users) {
      const no = await refusal(policy, 'POST', `/containers/${id}/pause`);
      if (no) throw new Error(`snapshot of volume ${v.volume}: ${no}`);
    }
    await ctx.paused(users);
    try {
      for (const id of users) await engine.must('POST', `/containers/${id}/pause`);
      await copyVolume(engine, policy, stack, v.image, v.volume, snapshot);
    } finally {
      for (const id of users) await engine.call('POST', `/containers/${id}/unpause`);
    }
    await ctx.paused([]);
    await ctx.copied({ volume: v.volume, snapshot, image: v.image });
    ctx.log(`copied volume ${v.volume} (service ${v.service}) to ${snapshot}`);
    const filters = encodeURIComponent(JSON.stringify({ label: [`${SNAPSHOT_LABELS.of}=${v.volume}`] }));
    const listed = (await engine.must('GET', `/volumes?filters=${filters}`)) as { Volumes: Array<{ Name: string }> | null };
    for (const old of (listed.Volumes ?? []).filter((o) => o.Name !== snapshot)) {
      const gone = await engine.call('DELETE', `/volumes/${encodeURIComponent(old.Name)}`);
      if (gone.status !== 204 && gone.status !== 404) ctx.log(`could not remove the older snapshot ${old.Name}: ${gone.message}`);
    }
  }
}

/**
 * Puts each volume back as its snapshot holds it. Containers of the stack still running on it
 * are stopped for the copy and started again after; the caller starts the old revision's.
 * Not judged by the policy: a restore must not stop halfway (its create was judged at snapshot).
 */
export async function restoreVolumes(engine: StackEngine, stack: string, copies: readonly VolumeCopy[], log: (line: string) => void): Promise<void> {
  if (copies.length === 0) return;
  await removeStaleHelpers(engine, stack);
  for (const c of copies) {
    const users = await usersOf(engine, stack, c.volume);
    for (const id of users) await engine.must('POST', `/containers/${id}/stop`, undefined, 120_000);
    await copyVolume(engine, null, stack, c.image, c.snapshot, c.volume);
    for (const id of users) await engine.call('POST', `/containers/${id}/start`);
    log(`restored volume ${c.volume} from ${c.snapshot}`);
  }
}
