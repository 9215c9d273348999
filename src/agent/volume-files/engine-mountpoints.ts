/**
 * Where a volume's files are on this host, asked of the engine (GET /volumes/NAME). Only plain
 * local volumes are browsable: a `local` volume with bind or device options, or another
 * driver's volume, is a window onto some other host directory or device, and confining paths
 * to it would not confine anything.
 */
import { DockfleetError } from '../../protocol/errors.ts';
import type { EngineClient } from '../engine-client.ts';
import { PathRefused } from './volume-file-error.ts';

interface VolumeInspect {
  Driver?: unknown;
  Mountpoint?: unknown;
  Options?: Record<string, unknown> | null;
}

export function engineMountpoints(engine: EngineClient): (volume: string) => Promise<string | null> {
  return async (volume) => {
    let info: VolumeInspect;
    try {
      info = await engine.json<VolumeInspect>({ path: `/volumes/${encodeURIComponent(volume)}`, timeoutMs: 10_000 });
    } catch (err) {
      if (err instanceof DockfleetError && /answered 404/.test(err.message)) return null;
      throw err;
    }
    if (info.Driver !== 'local') throw new PathRefused(`volume ${volume} uses the ${String(info.Driver)} driver; only local volumes can be browsed`);
    if (Object.keys(info.Options ?? {}).length > 0) {
      throw new PathRefused(`volume ${volume} is a local volume with driver options (a bind or device mount); it cannot be browsed safely`);
    }
    if (typeof info.Mountpoint !== 'string' || !info.Mountpoint.startsWith('/')) return null;
    return info.Mountpoint;
  };
}
