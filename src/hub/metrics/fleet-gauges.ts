/**
 * The fleet as gauges, computed at scrape time from the hub's in-memory view (collect
 * callbacks): nodes by state, connected agents, and per node what its agent already reports —
 * containers by state (from the inventory), CPUs and memory (the engine's facts), and the
 * host's CPU busy share and available memory (its latest host-usage report). One scrape
 * covers the fleet; labels are node names and small fixed sets only.
 */
import { Gauge, type Registry } from 'prom-client';
import type { NodeStatus } from '../../protocol/api.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { NodeRegistry } from '../node-registry.ts';

const NODE_STATES: readonly NodeStatus[] = ['pending', 'online', 'offline', 'revoked'];
/** Docker's container states; anything else an engine reports counts as `other`. */
const CONTAINER_STATES = new Set(['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']);

export function registerFleetGauges(register: Registry, registry: NodeRegistry, inventory: InventoryCache): void {
  // One pass over the registry feeds every gauge here. prom-client reads metrics in the order
  // they were registered, and this first one's collect callback runs the pass.
  const nodes = new Gauge({ name: 'dockfleet_nodes', help: 'Nodes by state (pending, online, offline, revoked).', labelNames: ['state'], registers: [register], collect: () => fill() });
  const connected = new Gauge({ name: 'dockfleet_agents_connected', help: 'Agents with a live link to this hub.', registers: [register] });
  const containers = new Gauge({ name: 'dockfleet_node_containers', help: 'Containers on each node by state, as its agent last reported them.', labelNames: ['node', 'state'], registers: [register] });
  const cpus = new Gauge({ name: 'dockfleet_node_cpus', help: "CPUs of each node's engine host, as its agent reported them.", labelNames: ['node'], registers: [register] });
  const memory = new Gauge({ name: 'dockfleet_node_memory_bytes', help: "Memory of each node's engine host, as its agent reported it.", labelNames: ['node'], registers: [register] });
  const cpuUsage = new Gauge({
    name: 'dockfleet_node_cpu_usage_ratio',
    help: "CPU busy share (0..1) of each node's host, as its agent last reported it.",
    labelNames: ['node'],
    registers: [register],
  });
  const memoryAvailable = new Gauge({
    name: 'dockfleet_node_memory_available_bytes',
    help: "Available memory of each node's host, as its agent last reported it.",
    labelNames: ['node'],
    registers: [register],
  });
  const engineUp = new Gauge({ name: 'dockfleet_node_engine_up', help: "1 when the node's agent reports its engine reachable, else 0.", labelNames: ['node'], registers: [register] });

  const fill = (): void => {
    for (const g of [nodes, containers, cpus, memory, cpuUsage, memoryAvailable, engineUp]) g.reset();
    const byState = new Map<NodeStatus, number>(NODE_STATES.map((s) => [s, 0]));
    let online = 0;
    for (const view of registry.list()) {
      byState.set(view.status, (byState.get(view.status) ?? 0) + 1);
      if (view.status === 'online') online++;
      if (view.status === 'revoked' || view.status === 'pending') continue;
      const record = registry.byName(view.name);
      const node = view.name;
      engineUp.set({ node }, view.status === 'online' && view.engine.state === 'up' ? 1 : 0);
      if (view.host) {
        cpus.set({ node }, view.host.cpus);
        memory.set({ node }, view.host.memoryBytes);
      }
      // Only from agents that report them (an older agent sends none: no series, not a zero).
      if (view.usage?.cpuBusyRatio != null) cpuUsage.set({ node }, view.usage.cpuBusyRatio);
      if (view.usage?.memoryAvailableBytes != null) memoryAvailable.set({ node }, view.usage.memoryAvailableBytes);
      const listed = record ? inventory.section(record.id, 'containers') : null;
      if (!listed) continue;
      const counts = new Map<string, number>();
      for (const item of listed.items) {
        const raw = (item as { State?: unknown }).State;
        const state = typeof raw === 'string' && CONTAINER_STATES.has(raw) ? raw : 'other';
        counts.set(state, (counts.get(state) ?? 0) + 1);
      }
      for (const [state, n] of counts) containers.set({ node, state }, n);
    }
    for (const [state, n] of byState) nodes.set({ state }, n);
    connected.set(online);
  };
}
