/**
 * Resource controls that can starve the host or lift a container out of the limits the
 * host's admin set: checked in container create bodies (HostConfig, and the deprecated
 * top-level copy) and in container update bodies. Each is allowed by a key under
 * `allow.resources` in the policy file (see policy-file.ts for the defaults and why).
 *
 * What the engine and kernel do with each value, which these checks follow:
 * - OomScoreAdj < 0 makes the OOM killer pick the host's own processes first.
 * - OomKillDisable true (cgroup v1) leaves a container without a memory limit unkillable.
 * - PidsLimit: on create, ≤ 0 means no limit (the CLI sends 0 when --pids-limit is not given,
 *   -1 when asked for unlimited); on update, 0 and -1 lift a limit set earlier.
 * - CgroupParent replaces the engine's own cgroup parent, so the engine's limits (and the
 *   slice a systemd host put it in) no longer hold; CPU and I/O weights then compete with
 *   the host's services instead of with other containers.
 * - tmpfs pages (Tmpfs, Mounts of type tmpfs, /dev/shm) and locked memory cannot be freed
 *   by killing a process: a tmpfs without a size gets half the host's memory, `size=0`
 *   none at all, `size=N%` a share of the host's memory.
 * - Real-time CPU (CpuRealtime*, the `rtprio` ulimit) can take a CPU from everything else.
 */
import { totalmem } from 'node:os';
import { MALFORMED, field, isRecord, listField, objectField, type JsonObject } from './go-fields.ts';
import type { PolicyAllow, ResourceAllow } from './policy-file.ts';
import { malformed, quote, sayer, type Say } from './refusal-text.ts';

/** An rlimit at or above this is as good as unlimited (the engine sends -1 as 2^64-1). */
const UNLIMITED_RLIMIT = 2 ** 62;
const PAGE_SIZE = 4096;

/** What a tmpfs mount asks of the host's memory: bytes, or null for no bound at all. */
type TmpfsSize = { where: string; bytes: number | null; why: string };

/** An optional integer field: null/absent → null. */
function numberField(obj: JsonObject, name: string): number | null | typeof MALFORMED {
  const value = field(obj, name);
  if (value === undefined || value === null) return null;
  return typeof value === 'number' && Number.isFinite(value) ? value : MALFORMED;
}

function bytes(n: number): string {
  const units: Array<[number, string]> = [
    [1024 ** 4, 'TiB'],
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ];
  const unit = units.find(([size]) => n >= size && n % size === 0);
  return unit ? `${n / unit[0]} ${unit[1]}` : `${n} bytes`;
}

/** A tmpfs `size=`/`nr_blocks=` value as the kernel reads it (memparse: k/m/g/t/p/e, or N%). */
function kernelSize(text: string, pages: boolean): number | typeof MALFORMED {
  const m = /^(\d+)([kmgtpe%]?)$/i.exec(text.trim());
  if (!m) return MALFORMED;
  const n = Number(m[1]);
  const suffix = (m[2] ?? '').toLowerCase();
  if (suffix === '%') return pages ? MALFORMED : Math.ceil((totalmem() * n) / 100);
  const scale = suffix === '' ? 1 : 1024 ** ('kmgtpe'.indexOf(suffix) + 1);
  return n * scale * (pages ? PAGE_SIZE : 1);
}

/** The size of a `Tmpfs` map entry: docker passes the options to mount(2), and the last size wins. */
function tmpfsMapSize(options: string): number | null | typeof MALFORMED {
  let size: number | null = null;
  for (const option of options.split(',')) {
    const at = option.indexOf('=');
    const key = (at === -1 ? option : option.slice(0, at)).trim().toLowerCase();
    if (key !== 'size' && key !== 'nr_blocks') continue;
    const value = kernelSize(at === -1 ? '' : option.slice(at + 1), key === 'nr_blocks');
    if (value === MALFORMED) return MALFORMED;
    size = value;
  }
  return size === 0 ? null : size;
}

function tmpfsSizes(hc: JsonObject, say: Say, where: string): TmpfsSize[] | string {
  const sizes: TmpfsSize[] = [];
  const map = objectField(hc, 'Tmpfs');
  if (map === MALFORMED) return malformed(say, `${where}Tmpfs`);
  for (const [target, options] of Object.entries(map ?? {})) {
    if (typeof options !== 'string') return malformed(say, `${where}Tmpfs[${quote(target)}]`);
    const size = tmpfsMapSize(options);
    if (size === MALFORMED) return malformed(say, `${where}Tmpfs[${quote(target)}] size`);
    sizes.push({ where: `a tmpfs at ${quote(target)}`, bytes: size, why: 'without a size' });
  }
  const mounts = listField(hc, 'Mounts');
  if (mounts === MALFORMED) return malformed(say, `${where}Mounts`);
  for (const [i, mount] of mounts.entries()) {
    if (!isRecord(mount)) return malformed(say, `${where}Mounts[${i}]`);
    const type = field(mount, 'Type');
    if (typeof type !== 'string' || type.trim().toLowerCase() !== 'tmpfs') continue;
    const options = objectField(mount, 'TmpfsOptions');
    if (options === MALFORMED) return malformed(say, `${where}Mounts[${i}].TmpfsOptions`);
    const size = options && numberField(options, 'SizeBytes');
    if (size === MALFORMED) return malformed(say, `${where}Mounts[${i}].TmpfsOptions.SizeBytes`);
    sizes.push({ where: `a tmpfs mount ${where}Mounts[${i}]`, bytes: size !== null && size > 0 ? size : null, why: 'without a size' });
  }
  const shm = numberField(hc, 'ShmSize');
  if (shm === MALFORMED) return malformed(say, `${where}ShmSize`);
  // 0 or absent: the engine's own default (64 MiB unless its admin chose another).
  if (shm !== null && shm > 0) sizes.push({ where: `/dev/shm of ${where}ShmSize`, bytes: shm, why: '' });
  return sizes;
}

function checkTmpfs(hc: JsonObject, max: number | null, say: Say, where: string): string | null {
  if (max === null) return null;
  const sizes = tmpfsSizes(hc, say, where);
  if (typeof sizes === 'string') return sizes;
  const rule = `allow.resources.maxTmpfsBytes is ${max} (${bytes(max)})`;
  let total = 0;
  for (const size of sizes) {
    if (size.bytes === null) return say(`${size.where} ${size.why}, which may fill half the host's memory or more`, rule);
    if (size.bytes > max) return say(`${size.where} of ${bytes(size.bytes)}`, rule);
    total += size.bytes;
  }
  return total > max ? say(`tmpfs mounts and /dev/shm adding up to ${bytes(total)}`, rule) : null;
}

function checkUlimits(hc: JsonObject, allow: ResourceAllow, say: Say, where: string): string | null {
  const list = listField(hc, 'Ulimits');
  if (list === MALFORMED) return malformed(say, `${where}Ulimits`);
  for (const [i, ulimit] of list.entries()) {
    if (!isRecord(ulimit)) return malformed(say, `${where}Ulimits[${i}]`);
    const name = field(ulimit, 'Name');
    const soft = numberField(ulimit, 'Soft');
    const hard = numberField(ulimit, 'Hard');
    if (typeof name !== 'string' || soft === MALFORMED || hard === MALFORMED) return malformed(say, `${where}Ulimits[${i}]`);
    const values = [soft ?? 0, hard ?? 0];
    const kind = name.trim().toLowerCase();
    if (!allow.realtimeCpu && kind === 'rtprio' && values.some((v) => v !== 0)) {
      return say(`real-time priority, the ulimit rtprio in ${where}Ulimits`, 'allow.resources.realtimeCpu is false');
    }
    if (allow.unlimitedUlimits) continue;
    if (values.some((v) => v < 0 || v >= UNLIMITED_RLIMIT)) return say(`an unlimited ulimit ${quote(name)} in ${where}Ulimits`, 'allow.resources.unlimitedUlimits is false');
    const cap = allow.maxTmpfsBytes;
    if (kind === 'memlock' && cap !== null && values.some((v) => v > cap)) {
      return say(`the ulimit memlock above ${bytes(cap)} in ${where}Ulimits (locked memory cannot be reclaimed, like a tmpfs)`, 'allow.resources.unlimitedUlimits is false');
    }
  }
  return null;
}

/** Fields shared by create and update bodies (update's are at the top level of its body). */
function checkSharedControls(body: JsonObject, allow: ResourceAllow, say: Say, where: string, update: boolean): string | null {
  const oomKillDisable = field(body, 'OomKillDisable');
  if (oomKillDisable !== undefined && oomKillDisable !== null && typeof oomKillDisable !== 'boolean') return malformed(say, `${where}OomKillDisable`);
  if (oomKillDisable === true && !allow.oomKillDisable) {
    return say(`${where}OomKillDisable, which can leave the host's memory to a container the kernel may not kill`, 'allow.resources.oomKillDisable is false');
  }
  const pids = numberField(body, 'PidsLimit');
  if (pids === MALFORMED) return malformed(say, `${where}PidsLimit`);
  // On create 0 is what the CLI sends for "not given"; on update 0 lifts the limit like -1.
  if (pids !== null && (update ? pids <= 0 : pids < 0) && !allow.unlimitedPids) {
    return say(`an unlimited ${where}PidsLimit (${pids})`, 'allow.resources.unlimitedPids is false');
  }
  for (const name of ['CpuRealtimePeriod', 'CpuRealtimeRuntime']) {
    const value = numberField(body, name);
    if (value === MALFORMED) return malformed(say, `${where}${name}`);
    if (value !== null && value !== 0 && !allow.realtimeCpu) return say(`real-time CPU time, ${where}${name}`, 'allow.resources.realtimeCpu is false');
  }
  return null;
}

function cgroupParentAllowed(parent: string, allowed: readonly string[]): boolean {
  if (parent.split('/').some((part) => part === '..' || part === '.')) return false;
  const normal = parent.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return allowed.some((entry) => normal === entry || (entry.startsWith('/') && normal.startsWith(entry === '/' ? '/' : `${entry}/`)));
}

/** A check of inspect-host-config.ts's CHECKS: `where` is "HostConfig." or "" (top level). */
export function checkResourceControls(hc: JsonObject, allow: PolicyAllow, say: Say, where: string): string | null {
  const r = allow.resources;
  const shared = checkSharedControls(hc, r, say, where, false);
  if (shared) return shared;
  const oomScore = numberField(hc, 'OomScoreAdj');
  if (oomScore === MALFORMED) return malformed(say, `${where}OomScoreAdj`);
  if (oomScore !== null && oomScore < 0 && !r.negativeOomScoreAdj) {
    return say(`a negative ${where}OomScoreAdj (${oomScore}), which makes the OOM killer take the host's processes first`, 'allow.resources.negativeOomScoreAdj is false');
  }
  const parent = field(hc, 'CgroupParent');
  if (parent !== undefined && parent !== null && typeof parent !== 'string') return malformed(say, `${where}CgroupParent`);
  if (typeof parent === 'string' && parent !== '' && !cgroupParentAllowed(parent, r.cgroupParents)) {
    const rule = r.cgroupParents.length === 0 ? 'allow.resources.cgroupParents is empty' : `allow.resources.cgroupParents is ${r.cgroupParents.join(', ')}`;
    return say(`the cgroup parent ${quote(parent)} in ${where}CgroupParent, outside the engine's own (the engine's limits would not hold)`, rule);
  }
  return checkTmpfs(hc, r.maxTmpfsBytes, say, where) ?? checkUlimits(hc, r, say, where);
}

/** POST /containers/ID/update: its body is the Resources and RestartPolicy of a container. */
export function inspectContainerUpdate(body: unknown, allow: PolicyAllow, source: string): string | null {
  const say = sayer(source);
  if (!isRecord(body)) return malformed(say, 'container update (not a JSON object)');
  return checkSharedControls(body, allow.resources, say, '', true);
}

/** The `allow.resources` keys that differ from the defaults, for the agent's startup line. */
export function describeResourceAllowances(r: ResourceAllow, defaults: ResourceAllow): string[] {
  return Object.entries(r)
    .filter(([key, value]) => JSON.stringify(value) !== JSON.stringify(defaults[key as keyof ResourceAllow]))
    .map(([key, value]) => (typeof value === 'boolean' ? `resources.${key}` : `resources.${key}=${Array.isArray(value) ? value.join(',') : String(value)}`));
}
