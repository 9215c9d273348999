/**
 * Volume driver options (`POST /volumes/create` DriverOpts, or a `volume` mount's
 * DriverConfig.Options). The `local` driver hands `type`, `o` and `device` to mount(8) run by
 * the engine on the host, so they can bind a host path (`o: bind`, or `type: none`), mount a
 * host block device (`type: ext4, device: /dev/sda1`) or a host-wide filesystem (`type:
 * proc`, `type: overlay, o: lowerdir=/`). Binds are checked like bind mounts; network and
 * memory filesystems pass; every other filesystem type needs allow.devices. The options are
 * checked whatever the driver is named (a plugin driver's options are rarely these).
 */
import { MALFORMED, stringField, type JsonObject } from './go-fields.ts';
import { checkBindSource } from './host-paths.ts';
import type { PolicyAllow } from './policy-file.ts';
import { malformed, quote, type Say } from './refusal-text.ts';

/** Filesystem types whose `device` is remote or virtual, never a host path. */
export const HARMLESS_VOLUME_TYPES: ReadonlySet<string> = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'tmpfs']);

export function checkVolumeDriverOptions(opts: JsonObject, allow: PolicyAllow, say: Say, where: string): string | null {
  const type = stringField(opts, 'type');
  const o = stringField(opts, 'o');
  const device = stringField(opts, 'device');
  if (type === MALFORMED || o === MALFORMED || device === MALFORMED) return malformed(say, where);
  const fsType = type.trim().toLowerCase();
  const flags = o.split(',').map((flag) => flag.trim().toLowerCase());
  if (flags.includes('bind') || flags.includes('rbind') || fsType === 'none') return checkBindSource(device, allow, say);
  if (fsType === '' && device === '') return null;
  if (HARMLESS_VOLUME_TYPES.has(fsType) || allow.devices) return null;
  return say(`a volume that mounts ${quote(device)} as filesystem type ${quote(type)} on the host`, 'allow.devices is false');
}
