/**
 * The few fields of one item of the engine's containers list (`/containers/json?all=1`, as the
 * agent streams it into the inventory) that routes need, read defensively: the items are the
 * engine's JSON, relayed by an agent, so nothing in them is trusted to have its documented shape.
 */
import { isIngressLabel } from './route-labels.ts';

export interface ListedContainer {
  id: string;
  /** The name without Docker's leading slash (the ID's first 12 characters if it has none). */
  name: string;
  /** Seconds since the epoch (the list's `Created`); 0 when absent. */
  created: number;
  running: boolean;
  labels: Record<string, string>;
  hasIngress: boolean;
  /** Exposed TCP ports, published or not, while running; null for a stopped container (the list shows none). */
  exposed: number[] | null;
}

export function readContainer(item: unknown): ListedContainer | null {
  if (typeof item !== 'object' || item === null) return null;
  const raw = item as Record<string, unknown>;
  if (typeof raw.Id !== 'string' || raw.Id === '') return null;
  const labels: Record<string, string> = {};
  if (typeof raw.Labels === 'object' && raw.Labels !== null) {
    for (const [k, v] of Object.entries(raw.Labels)) if (typeof v === 'string') labels[k] = v;
  }
  const firstName = Array.isArray(raw.Names) ? raw.Names.find((n): n is string => typeof n === 'string') : undefined;
  const running = raw.State === 'running';
  return {
    id: raw.Id,
    name: firstName ? firstName.replace(/^\//, '') : raw.Id.slice(0, 12),
    created: typeof raw.Created === 'number' && Number.isFinite(raw.Created) ? raw.Created : 0,
    running,
    labels,
    hasIngress: Object.keys(labels).some(isIngressLabel),
    exposed: running ? exposedPorts(raw.Ports) : null,
  };
}

function exposedPorts(ports: unknown): number[] {
  if (!Array.isArray(ports)) return [];
  const seen = new Set<number>();
  for (const p of ports) {
    if (typeof p !== 'object' || p === null) continue;
    const { PrivatePort, Type } = p as { PrivatePort?: unknown; Type?: unknown };
    if (Type === 'tcp' && typeof PrivatePort === 'number' && Number.isInteger(PrivatePort)) seen.add(PrivatePort);
  }
  return [...seen].sort((a, b) => a - b);
}
