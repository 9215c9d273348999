/**
 * Container and host stats between agent and hub. The hub opens one long-lived stream per node
 * (GET STATS_PATH?ids=…&host=1) naming what some page watches; the agent samples exactly that,
 * once a tick, for as long as the stream stays open, and writes one NDJSON line per tick.
 * Rates are per second; CPU is a percentage of one CPU (200 % = two CPUs busy), as `docker stats`.
 */
import { z } from 'zod';

export const STATS_PATH = '/_dockfleet/v1/stats';
/** How often the agent samples while watched. */
export const STATS_INTERVAL_MS = 1000;
/** The most containers one node samples at once (more requested: the first ones win). */
export const MAX_WATCHED_PER_NODE = 400;
/** A container id as the engine spells it (full or short hex). */
export const containerId = z.string().regex(/^[0-9a-f]{12,64}$/);

export const containerPoint = z.object({
  id: containerId,
  cpuPercent: z.number().nonnegative(),
  memUsage: z.number().nonnegative(),
  memLimit: z.number().nonnegative(),
  netRx: z.number().nonnegative(),
  netTx: z.number().nonnegative(),
  blkRead: z.number().nonnegative(),
  blkWrite: z.number().nonnegative(),
});
export type ContainerPoint = z.infer<typeof containerPoint>;

/** The agent host's own use, from /proc on the agent's host; its cpuPercent is of the whole host (0–100). */
export const hostPoint = z.object({
  cpuPercent: z.number().nonnegative(),
  cpus: z.number().int().nonnegative(),
  memUsed: z.number().nonnegative(),
  memTotal: z.number().nonnegative(),
});
export type HostPoint = z.infer<typeof hostPoint>;

export const statsLine = z.object({
  at: z.number(),
  host: hostPoint.optional(),
  containers: z.array(containerPoint).max(MAX_WATCHED_PER_NODE),
});
export type StatsLine = z.infer<typeof statsLine>;

/** The query the hub sends: which containers, and whether the host's own use too. */
export function statsQuery(ids: readonly string[], host: boolean): string {
  const params = new URLSearchParams();
  if (ids.length > 0) params.set('ids', ids.join(','));
  if (host) params.set('host', '1');
  return `${STATS_PATH}?${params.toString()}`;
}

/** Parses that query on the agent; unknown or malformed ids are dropped, the rest capped. */
export function parseStatsQuery(search: string): { ids: string[]; host: boolean } {
  const params = new URLSearchParams(search);
  const ids = (params.get('ids') ?? '').split(',').filter((id) => containerId.safeParse(id).success);
  return { ids: [...new Set(ids)].slice(0, MAX_WATCHED_PER_NODE), host: params.get('host') === '1' };
}
