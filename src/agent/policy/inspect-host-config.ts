/**
 * The HostConfig checks of a container create: everything in it that reaches past the
 * container onto the host. Each check returns the first refusal or null; a field the policy
 * cannot read is refused as malformed (the engine would reject it too).
 */
import { MALFORMED, flagSet, isRecord, listField, objectField, stringField, stringsField, field, type JsonObject } from './go-fields.ts';
import { checkBindSource } from './host-paths.ts';
import type { PolicyAllow } from './policy-file.ts';
import { malformed, quote, type Say } from './refusal-text.ts';
import { checkResourceControls } from './resource-controls.ts';
import { checkVolumeDriverOptions } from './volume-driver-options.ts';

/** Docker's default capability set, which `CapAdd` may repeat without any allowance. */
export const DOCKER_DEFAULT_CAPABILITIES: ReadonlySet<string> = new Set([
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
]);

const NAMESPACE_MODES = ['PidMode', 'IpcMode', 'NetworkMode', 'UTSMode', 'UsernsMode', 'CgroupnsMode'] as const;
const DEVICE_FIELDS = ['Devices', 'DeviceRequests', 'DeviceCgroupRules'] as const;

type Check = (hc: JsonObject, allow: PolicyAllow, say: Say, where: string) => string | null;

const privileged: Check = (hc, allow, say) => (!allow.privileged && flagSet(hc, 'Privileged') ? say('privileged containers', 'allow.privileged is false') : null);

/**
 * Security options that switch confinement off, read as the engine parses them: the bare words
 * `no-new-privileges`, `disable` (SELinux labels off) and `writable-cgroups`; otherwise
 * key=value, or key:value when there is no `=`. Case and spaces are folded (the engine would
 * refuse those spellings; refusing them too costs nothing). Custom seccomp profiles count (they
 * can allow everything), and so does any SELinux label but a level or a file type.
 */
function unconfining(opt: string): boolean {
  const text = opt.trim().toLowerCase();
  if (text === 'no-new-privileges') return false;
  if (text === 'disable' || text === 'writable-cgroups') return true;
  const sep = text.includes('=') ? '=' : ':';
  const at = text.indexOf(sep);
  const key = (at === -1 ? text : text.slice(0, at)).trim();
  const value = (at === -1 ? '' : text.slice(at + 1)).trim();
  switch (key) {
    case 'seccomp':
      return value !== 'builtin' && value !== '';
    case 'apparmor':
      return value === 'unconfined';
    case 'label':
      return !/^(level|filetype)\s*[:=]/.test(value);
    case 'systempaths':
      return value === 'unconfined';
    case 'writable-cgroups':
      return !['0', 'f', 'false'].includes(value);
    default:
      return false;
  }
}

const securityOpts: Check = (hc, allow, say, where) => {
  if (allow.privileged) return null;
  const opts = stringsField(hc, 'SecurityOpt');
  if (opts === MALFORMED) return malformed(say, `${where}SecurityOpt`);
  const bad = opts.find(unconfining);
  if (bad !== undefined) return say(`security option ${quote(bad)}, which counts as privileged`, 'allow.privileged is false');
  // `--security-opt systempaths=unconfined` reaches the engine as empty MaskedPaths/ReadonlyPaths.
  for (const name of ['MaskedPaths', 'ReadonlyPaths']) {
    const value = field(hc, name);
    if (value !== undefined && value !== null) {
      return say(`overriding ${where}${name} (as --security-opt systempaths=unconfined does), which counts as privileged`, 'allow.privileged is false');
    }
  }
  return null;
};

const namespaces: Check = (hc, allow, say, where) => {
  if (allow.hostNamespaces) return null;
  for (const name of NAMESPACE_MODES) {
    const mode = stringField(hc, name);
    if (mode === MALFORMED) return malformed(say, `${where}${name}`);
    if (mode.trim().toLowerCase() === 'host') return say(`sharing the host's namespaces, ${where}${name}="host"`, 'allow.hostNamespaces is false');
  }
  return null;
};

const capabilities: Check = (hc, allow, say, where) => {
  if (allow.capabilities.includes('ALL')) return null;
  for (const name of ['CapAdd', 'Capabilities']) {
    const caps = stringsField(hc, name);
    if (caps === MALFORMED) return malformed(say, `${where}${name}`);
    for (const cap of caps) {
      const norm = cap.trim().toUpperCase().replace(/^CAP_/, '');
      if (!DOCKER_DEFAULT_CAPABILITIES.has(norm) && !allow.capabilities.includes(norm)) {
        return say(`adding capability ${quote(cap)} beyond Docker's default set`, `${norm} is not in allow.capabilities`);
      }
    }
  }
  return null;
};

const devices: Check = (hc, allow, say, where) => {
  if (allow.devices) return null;
  for (const name of DEVICE_FIELDS) {
    const list = listField(hc, name);
    if (list === MALFORMED) return malformed(say, `${where}${name}`);
    if (list.length > 0) return say(`host devices, ${where}${name}`, 'allow.devices is false');
  }
  return null;
};

/** `Binds` entries are "src:dst[:opts]"; an absolute src is a host path, anything else a volume name. */
const binds: Check = (hc, allow, say, where) => {
  const list = stringsField(hc, 'Binds');
  if (list === MALFORMED) return malformed(say, `${where}Binds`);
  for (const bind of list) {
    const parts = bind.split(':');
    const source = parts[0] ?? '';
    if (parts.length < 2 || !source.startsWith('/')) continue;
    const refusal = checkBindSource(source, allow, say);
    if (refusal) return refusal;
  }
  return null;
};

function checkMount(mount: unknown, allow: PolicyAllow, say: Say, where: string): string | null {
  if (!isRecord(mount)) return malformed(say, where);
  const type = stringField(mount, 'Type');
  if (type === MALFORMED) return malformed(say, `${where}.Type`);
  const kind = type.trim().toLowerCase();
  if (kind === 'bind') {
    const source = stringField(mount, 'Source');
    return source === MALFORMED ? malformed(say, `${where}.Source`) : checkBindSource(source, allow, say);
  }
  if (kind !== 'volume') return null;
  const volumeOptions = objectField(mount, 'VolumeOptions');
  if (volumeOptions === MALFORMED) return malformed(say, `${where}.VolumeOptions`);
  const driverConfig = volumeOptions && objectField(volumeOptions, 'DriverConfig');
  if (driverConfig === MALFORMED) return malformed(say, `${where}.VolumeOptions.DriverConfig`);
  const options = driverConfig && objectField(driverConfig, 'Options');
  if (options === MALFORMED) return malformed(say, `${where}.VolumeOptions.DriverConfig.Options`);
  return options ? checkVolumeDriverOptions(options, allow, say, `${where}.VolumeOptions.DriverConfig.Options`) : null;
}

const mounts: Check = (hc, allow, say, where) => {
  const list = listField(hc, 'Mounts');
  if (list === MALFORMED) return malformed(say, `${where}Mounts`);
  for (const [i, mount] of list.entries()) {
    const refusal = checkMount(mount, allow, say, `${where}Mounts[${i}]`);
    if (refusal) return refusal;
  }
  return null;
};

const CHECKS: readonly Check[] = [privileged, securityOpts, namespaces, capabilities, devices, binds, mounts, checkResourceControls];

/** `where` prefixes field names in refusals: "HostConfig." or "" for top-level fields. */
export function inspectHostConfig(hc: JsonObject, allow: PolicyAllow, say: Say, where: string): string | null {
  for (const check of CHECKS) {
    const refusal = check(hc, allow, say, where);
    if (refusal) return refusal;
  }
  return null;
}
