/**
 * The hub's Prometheus metrics (prom-client), one registry per hub. Most values are read at
 * scrape time from what the hub already keeps (collect callbacks); the rest come from events the
 * hub already emits (an agent linked, a link's round trip, a link closed) and from one call per
 * Docker call (`gatewayCall`, made by the Docker gateway). Labels are node names and small fixed
 * sets only: never a path, a container id, a user or a secret.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentLink } from '../gateway/agent-link.ts';
import type { InventoryCache } from '../inventory-cache.ts';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { NodeRegistry } from '../node-registry.ts';
import { parseDockerRoute } from '../docker/docker-route.ts';
import { dockerSection } from './docker-section.ts';
import { registerFleetGauges } from './fleet-gauges.ts';

export interface MetricSources {
  registry: NodeRegistry;
  inventory: InventoryCache;
  jobs: JobQueue;
  /** Audit rows the hub could not write since it started. */
  auditWriteFailures: () => number;
  /** Open server-sent event streams: the live feed and the stats feed. */
  sseClients: () => { live: number; stats: number };
  /** Open web terminals. */
  terminalSessions: () => number;
}

/** One Docker call through the hub, as the gateway saw it end (or, for attach/exec, upgrade). */
export interface GatewayCall {
  /** The request's URL (/docker/nodes/NAME/… or /docker/fleet/…). */
  url: string;
  status: number;
  /** process.hrtime.bigint() when the call arrived. */
  startedAt: bigint;
  refusedByPolicy: boolean;
}

/** Label values for calls that name no node (the fleet endpoint) or a node the hub does not know. */
export const FLEET_NODE_LABEL = '_fleet';
export const UNKNOWN_NODE_LABEL = '_unknown';

/** prom-client's default metrics that are gauges with a `_total` suffix; their unsuffixed, per-type twins stay. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class HubMetrics {
  readonly register = new Registry();
  readonly #registry: NodeRegistry;
  readonly #calls: Counter<'node' | 'section' | 'status'>;
  readonly #latency: Histogram<'node' | 'section'>;
  readonly #refusals: Counter<'node'>;
  /** Nodes linked at least once since the hub started: a later link is a reconnect. */
  readonly #linkedBefore = new Set<string>();
  readonly #liveLinks = new Set<AgentLink>();
  /** Bytes of links that have closed; live links add theirs at scrape time. */
  readonly #closedBytes = { toAgents: 0, fromAgents: 0 };

  constructor(sources: MetricSources) {
    const register = this.register;
    this.#registry = sources.registry;
    collectDefaultMetrics({ register });
    // Gauges named like counters (promtool flags them); the per-type gauges beside them hold the same counts.
    for (const name of MISNAMED_DEFAULTS) register.removeSingleMetric(name);
    registerFleetGauges(register, sources.registry, sources.inventory);

    const reconnects = new Counter({
      name: 'dockfleet_agent_reconnects_total',
      help: 'Links of a node that came up again after its first since the hub started.',
      labelNames: ['node'],
      registers: [register],
    });
    const rtt = new Histogram({
      name: 'dockfleet_agent_heartbeat_round_trip_seconds',
      help: "Round trips of the hub's pings on agent links, sent on the agents' heartbeats.",
      buckets: RTT_BUCKETS,
      registers: [register],
    });
    const closedBytes = this.#closedBytes;
    const liveLinks = this.#liveLinks;
    new Counter({
      name: 'dockfleet_agent_link_bytes_total',
      help: 'Bytes relayed over agent links (TLS payload), by direction.',
      labelNames: ['direction'],
      registers: [register],
      collect() {
        let toAgents = closedBytes.toAgents;
        let fromAgents = closedBytes.fromAgents;
        for (const link of liveLinks) {
          const b = link.bytes;
          toAgents += b.toAgent;
          fromAgents += b.fromAgent;
        }
        this.reset();
        this.inc({ direction: 'to_agents' }, toAgents);
        this.inc({ direction: 'from_agents' }, fromAgents);
      },
    });
    this.#calls = new Counter({
      name: 'dockfleet_gateway_requests_total',
      help: 'Docker API calls through the hub by node, API section and HTTP status.',
      labelNames: ['node', 'section', 'status'],
      registers: [register],
    });
    this.#latency = new Histogram({
      name: 'dockfleet_gateway_request_duration_seconds',
      help: 'Duration of Docker API calls through the hub, until the answer ended (until the upgrade, for attach and exec).',
      labelNames: ['node', 'section'],
      buckets: LATENCY_BUCKETS,
      registers: [register],
    });
    this.#refusals = new Counter({ name: 'dockfleet_policy_refusals_total', help: "Docker API calls the node's host policy refused.", labelNames: ['node'], registers: [register] });

    const { jobs } = sources;
    const jobStates = new Gauge({ name: 'dockfleet_jobs', help: 'Jobs not yet finished, by state (awaiting-signature, queued, running).', labelNames: ['state'], registers: [register] });
    new Gauge({
      name: 'dockfleet_job_queue_depth',
      help: 'Queued jobs the hub has not yet delivered to their agent.',
      registers: [register],
      async collect() {
        const [open, signing] = await Promise.all([jobs.open(), jobs.signingJobs()]);
        const count = (state: string): number => open.filter((j) => j.state === state).length;
        jobStates.set({ state: 'awaiting-signature' }, signing.filter((j) => j.state === 'awaiting-signature').length);
        jobStates.set({ state: 'queued' }, count('queued'));
        jobStates.set({ state: 'running' }, count('running'));
        this.set(open.filter((j) => j.state === 'queued' && j.deliveredAt === null).length);
      },
    });
    new Counter({
      name: 'dockfleet_audit_write_failures_total',
      help: 'Audit log rows the hub could not write since it started.',
      registers: [register],
      collect() {
        this.reset();
        this.inc(sources.auditWriteFailures());
      },
    });
    new Gauge({
      name: 'dockfleet_sse_clients',
      help: 'Open server-sent event streams, by feed (live, stats).',
      labelNames: ['feed'],
      registers: [register],
      collect() {
        const n = sources.sseClients();
        this.set({ feed: 'live' }, n.live);
        this.set({ feed: 'stats' }, n.stats);
      },
    });
    new Gauge({
      name: 'dockfleet_terminal_sessions',
      help: 'Open web terminal sessions.',
      registers: [register],
      collect() {
        this.set(sources.terminalSessions());
      },
    });

    sources.registry.on('linked', (link) => {
      if (this.#linkedBefore.has(link.nodeId)) reconnects.inc({ node: link.nodeName });
      else this.#linkedBefore.add(link.nodeId);
      this.#liveLinks.add(link);
      link.on('roundTrip', (ms) => rtt.observe(ms / 1000));
      link.once('close', () => {
        this.#liveLinks.delete(link);
        const b = link.bytes;
        this.#closedBytes.toAgents += b.toAgent;
        this.#closedBytes.fromAgents += b.fromAgent;
      });
    });
  }

  /** Counts one Docker call through the hub (docker/docker-gateway.ts calls this as each ends). */
  gatewayCall(call: GatewayCall): void {
    const route = parseDockerRoute(call.url);
    const node = route === null || (route.kind === 'node' && !this.#registry.byName(route.node)) ? UNKNOWN_NODE_LABEL : route.kind === 'fleet' ? FLEET_NODE_LABEL : route.node;
    const section = route === null ? 'other' : dockerSection(route.enginePath);
    this.#calls.inc({ node, section, status: String(call.status) });
    this.#latency.observe({ node, section }, Number(process.hrtime.bigint() - call.startedAt) / 1e9);
    if (call.refusedByPolicy) this.#refusals.inc({ node });
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.register.contentType, body: await this.register.metrics() };
  }
}
