/**
 * Every way a request (or an existing container) reaches a host path, read out of a body
 * without judging it: bind sources, named volumes (whose options may bind a host path) and
 * containers whose mounts are borrowed (`VolumesFrom`). Pure; host-path-judge.ts judges the
 * references against the host. Shapes the pure pass has already refused as malformed are
 * skipped here.
 */
import { field, isRecord, listField, objectField, stringField, stringsField, MALFORMED, type JsonObject } from './go-fields.ts';

export type HostRef =
  /** A host path the engine will mount. `where` says what in the request led to it. */
  | { kind: 'bind'; source: string; where: string }
  /** A named volume: if it exists, its options may bind a host path. */
  | { kind: 'volume'; name: string; where: string }
  /** A container whose mounts `VolumesFrom` borrows. */
  | { kind: 'container'; ref: string; where: string };

/** The host path a local volume's options bind (`o=bind`/`rbind`, `type=none`), else null. */
export function volumeBindDevice(options: JsonObject): string | null {
  const type = stringField(options, 'type');
  const o = stringField(options, 'o');
  const device = stringField(options, 'device');
  if (type === MALFORMED || o === MALFORMED || device === MALFORMED) return null;
  const flags = o.split(',').map((flag) => flag.trim().toLowerCase());
  return flags.includes('bind') || flags.includes('rbind') || type.trim().toLowerCase() === 'none' ? device : null;
}

function bindsRefs(hc: JsonObject, where: string, out: HostRef[]): void {
  const binds = stringsField(hc, 'Binds');
  if (binds === MALFORMED) return;
  for (const bind of binds) {
    const parts = bind.split(':');
    const source = parts[0] ?? '';
    if (parts.length < 2 || source === '') continue;
    if (source.startsWith('/')) out.push({ kind: 'bind', source, where: '' });
    else out.push({ kind: 'volume', name: source, where: `${where}Binds` });
  }
}

function mountsRefs(hc: JsonObject, where: string, out: HostRef[]): void {
  const mounts = listField(hc, 'Mounts');
  if (mounts === MALFORMED) return;
  for (const [i, mount] of mounts.entries()) {
    if (!isRecord(mount)) continue;
    const type = stringField(mount, 'Type');
    const source = stringField(mount, 'Source');
    if (type === MALFORMED || source === MALFORMED) continue;
    const kind = type.trim().toLowerCase();
    if (kind === 'bind') out.push({ kind: 'bind', source, where: '' });
    if (kind !== 'volume') continue;
    if (source !== '') out.push({ kind: 'volume', name: source, where: `${where}Mounts[${i}]` });
    const options = optionsOf(mount);
    const device = options && volumeBindDevice(options);
    if (device) out.push({ kind: 'bind', source: device, where: `${where}Mounts[${i}].VolumeOptions` });
  }
}

function optionsOf(mount: JsonObject): JsonObject | null {
  const volumeOptions = objectField(mount, 'VolumeOptions');
  const driverConfig = volumeOptions && volumeOptions !== MALFORMED ? objectField(volumeOptions, 'DriverConfig') : null;
  const options = driverConfig && driverConfig !== MALFORMED ? objectField(driverConfig, 'Options') : null;
  return options && options !== MALFORMED ? options : null;
}

function volumesFromRefs(hc: JsonObject, where: string, out: HostRef[]): void {
  const list = stringsField(hc, 'VolumesFrom');
  if (list === MALFORMED) return;
  for (const entry of list) {
    const ref = entry.replace(/:(ro|rw)$/i, '');
    if (ref !== '') out.push({ kind: 'container', ref, where: `${where}VolumesFrom` });
  }
}

function hostConfigRefs(hc: JsonObject, where: string, out: HostRef[], withVolumesFrom: boolean): void {
  bindsRefs(hc, where, out);
  mountsRefs(hc, where, out);
  if (withVolumesFrom) volumesFromRefs(hc, where, out);
}

/** POST /containers/create: HostConfig and the deprecated top-level HostConfig fields. */
export function createBodyRefs(body: unknown): HostRef[] {
  const out: HostRef[] = [];
  if (!isRecord(body)) return out;
  hostConfigRefs(body, '', out, true);
  const hc = objectField(body, 'HostConfig');
  if (hc && hc !== MALFORMED) hostConfigRefs(hc, 'HostConfig.', out, true);
  return out;
}

/**
 * An existing container (GET /containers/ID/json): its effective `Mounts` (which include
 * what it borrowed through VolumesFrom) and its HostConfig binds and mounts.
 */
export function containerRefs(inspect: JsonObject, name: string): HostRef[] {
  const out: HostRef[] = [];
  const where = `container ${name}`;
  const mounts = listField(inspect, 'Mounts');
  for (const mount of mounts === MALFORMED ? [] : mounts) {
    if (!isRecord(mount)) continue;
    const type = String(field(mount, 'Type') ?? '').toLowerCase();
    const source = field(mount, 'Source');
    const volume = field(mount, 'Name');
    if (type === 'bind' && typeof source === 'string') out.push({ kind: 'bind', source, where });
    if (type === 'volume' && typeof volume === 'string' && volume !== '') out.push({ kind: 'volume', name: volume, where });
  }
  const hc = objectField(inspect, 'HostConfig');
  if (hc && hc !== MALFORMED) {
    const fromConfig: HostRef[] = [];
    hostConfigRefs(hc, '', fromConfig, false);
    for (const ref of fromConfig) out.push({ ...ref, where });
  }
  return out;
}
