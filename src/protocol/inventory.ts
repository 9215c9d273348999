/**
 * Inventory messages: the agent streams these (NDJSON) on a long-lived HTTP/2 stream the hub
 * opens. Each message replaces one section of the hub's view of that node's engine. Items are
 * kept in Docker's own list format; only the envelope is checked here.
 */
import { z } from 'zod';
import { policyMessage } from './policy-summary.ts';

export const INVENTORY_PATH = '/_dockfleet/v1/inventory';
export const NOOP_PATH = '/_dockfleet/v1/noop';
export const ROTATE_PATH = '/_dockfleet/v1/rotate';
/** A single inventory line may not exceed this (a few thousand containers fit easily). */
export const MAX_INVENTORY_LINE = 32 * 1024 * 1024;

export const INVENTORY_SECTIONS = ['containers', 'images', 'volumes', 'networks'] as const;
export type InventorySection = (typeof INVENTORY_SECTIONS)[number];

const item = z.record(z.string(), z.unknown());

export const engineFacts = z.object({
  version: z.string().max(64),
  apiVersion: z.string().max(16),
  os: z.string().max(200),
  arch: z.string().max(32),
  kernel: z.string().max(200),
  cpus: z.number().int().nonnegative(),
  memoryBytes: z.number().nonnegative(),
  hostname: z.string().max(255),
});
export type EngineFacts = z.infer<typeof engineFacts>;

/** The hub asks for host-usage reports by opening the inventory stream with this query; an
 * agent that predates them ignores the query (and sends none), and a hub that predates them
 * never asks, so neither side ever sees a message it does not know. */
export const HOST_USAGE_QUERY = 'hostUsage=1';
/** How often an agent that was asked reports its host's use (tests shorten it, see src/agent/host-usage-report.ts). */
export const HOST_USAGE_EVERY_MS = 15_000;
/** The agent host's use since its previous report: CPU busy share over all CPUs (0..1) and
 * available memory (MemAvailable). Each field is optional: a host that cannot tell leaves it out. */
export const hostUsageMessage = z.object({
  t: z.literal('hostUsage'),
  cpuBusyRatio: z.number().min(0).max(1).optional(),
  memoryAvailableBytes: z.number().nonnegative().optional(),
});
export type HostUsageMessage = z.infer<typeof hostUsageMessage>;

export const inventoryMessage = z.union([
  z.object({ t: z.literal('engine'), state: z.literal('up'), facts: engineFacts }),
  z.object({ t: z.literal('engine'), state: z.literal('down'), error: z.string().max(500) }),
  z.object({ t: z.literal('section'), section: z.enum(INVENTORY_SECTIONS), items: z.array(item), at: z.number() }),
  policyMessage,
  /** The head of the host's own audit log (src/agent/audit/), for the hub to compare with its own. */
  z.object({ t: z.literal('auditHead'), seq: z.number().int().nonnegative(), hash: z.string().regex(/^[0-9a-f]{64}$/) }),
  hostUsageMessage,
]);
export type InventoryMessage = z.infer<typeof inventoryMessage>;

export const rotateRequest = z.discriminatedUnion('phase', [z.object({ phase: z.literal('prepare') }), z.object({ phase: z.literal('commit'), keyId: z.string().regex(/^[0-9a-f]{32}$/) })]);
export const rotatePrepared = z.object({ keyId: z.string(), publicKey: z.string().max(1000), proof: z.string() });
export type RotatePrepared = z.infer<typeof rotatePrepared>;
