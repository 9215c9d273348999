/**
 * Wires the hub's parts into request and upgrade handlers, apart from any listening socket:
 * REST API and health (Hono), the agents' gateway (WebSocket upgrade). `run-hub.ts` listens.
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { GATEWAY_PATH } from '../protocol/handshake.ts';
import type { Store } from '../store/store.ts';
import type { SetupCode } from './auth/setup-code.ts';
import type { Logger } from '../lib/logger.ts';
import { buildRestApp } from './api/rest-app.ts';
import { AgentUpgrades } from './releases/agent-upgrades.ts';
import { LocalLeases, type Leases } from './cluster/lease.ts';
import { ReleaseStore } from './releases/release-store.ts';
import { FleetEvents } from './events/fleet-events.ts';
import { Enrollment } from './enrollment.ts';
import { LiveStream, LIVE_STREAM_PATH } from './api/live-stream.ts';
import { StatsHub } from './stats/stats-hub.ts';
import { StatsEvents, STATS_STREAM_PATH } from './stats/stats-events.ts';
import { TerminalBridge, isTerminalPath } from './api/terminal-bridge.ts';
import { matchVolumeFiles, proxyVolumeFiles } from './api/volume-files-proxy.ts';
import { AuditLog } from './audit-log.ts';
import { buildUi, createUiHandler, describeUi } from './ui/ui-assets.ts';
import { Principals } from './auth/principals.ts';
import { DockerGateway } from './docker/docker-gateway.ts';
import { isDockerUrl } from './docker/docker-route.ts';
import { StreamCaps } from './docker/stream-caps.ts';
import { AgentGateway } from './gateway/agent-gateway.ts';
import type { HubPki } from './pki.ts';
import type { ReconnectLimiter } from './gateway/reconnect-limiter.ts';
import { InventoryCache } from './inventory-cache.ts';
import { NodeRegistry } from './node-registry.ts';
import { JobDispatcher } from './jobs/job-dispatcher.ts';
import { JobQueue } from './jobs/job-queue.ts';
import { StackStatusFeed } from './jobs/stack-status-feed.ts';
import { buildStacks } from './stacks/build-stacks.ts';
import type { SecretBox } from './secret-box.ts';
import { RouteTable } from './edge/route-table.ts';
import { EdgeSignIn } from './edge/access/edge-sign-in.ts';
import { EdgeCertificates } from './edge/certs/edge-certificates.ts';
import { Alerts, type AlertTuning } from './alerts/alerts.ts';
import { RegistryAuth } from './registry-auth/registry-auth.ts';
import { BackupVerifySource } from './alerts/sources/backup-verify-source.ts';
import { BackupReportFeed } from './volume-backups/backup-report-feed.ts';
import { HostRebuilds, type RebuildTuning } from './rebuild/host-rebuilds.ts';
import { HubKeptSecrets } from './volume-backups/hub-kept-secrets.ts';
import { RebuildAlertSource } from './rebuild/rebuild-alert-source.ts';
import { HubMetrics } from './metrics/hub-metrics.ts';
import { isMetricsRequest, serveMetrics } from './metrics/metrics-endpoint.ts';

export interface HubDeps {
  store: Store;
  /** The first-run setup code (DIR/setup.code); without one, setup is refused. */
  setupCode?: SetupCode | null;
  pki: HubPki;
  log: Logger;
  /** Seals secrets at rest (the master key, kept outside DIR: backup/master-key.ts). */
  secrets: SecretBox;
  fleetDeadlineMs?: number;
  handshakeTimeoutMs?: number;
  limiter?: ReconnectLimiter;
  /** Concurrent Docker calls, streams, terminals and file transfers per user (default 64). */
  streamsPerUser?: number;
  /** Alert timings (offline grace, restart loop, delivery retries); tests shorten them. */
  alertTuning?: Partial<AlertTuning>;
  /** Host rebuild timings (how long a replacement's agent may take to connect); tests shorten them. */
  rebuildTuning?: RebuildTuning;
  /** SHA-256 of the scrape token (DIR/metrics.token), which opens GET /metrics only; null: admins only. */
  scrapeTokenHash?: string | null;
  /** Agent releases (DIR/releases) and the fleet's release key; null: the hub offers none (issue 16). */
  releases?: { dir: string; key: string } | null;
  /** The hub replicas agents may dial, handed to them at their handshake (issue 17); absent: a single hub. */
  agentReplicas?: () => string[];
  /** Work that one replica at a time must do (cluster/lease.ts); absent: this hub alone holds every lease. Closed with the hub. */
  leases?: Leases;
}

export interface Hub {
  requestListener: RequestListener;
  upgradeListener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  registry: NodeRegistry;
  inventory: InventoryCache;
  enrollment: Enrollment;
  /** The durable job queue (delivered to agents by its dispatcher). */
  jobs: JobQueue;
  /** Each agent's stack status messages, for the stack service to register on. */
  stackStatus: StackStatusFeed;
  secrets: SecretBox;
  /** Every node's ingress routes from container labels (the edge matches against it). */
  routes: RouteTable;
  /** Sign-in for routes marked `users` or a role: the hand-off codes and the edge's gate. */
  edgeSignIn: EdgeSignIn;
  /** The edge's certificates (supplied and ACME), keys sealed in the store. */
  edgeCertificates: EdgeCertificates;
  /** Incidents from every alert source, delivered to the admin's receivers. */
  alerts: Alerts;
  /** The REST API's Hono app (its route table is what the OpenAPI document must cover). */
  restApp: { routes: ReadonlyArray<{ method: string; path: string }> };
  /** The agents' door (a replica drains it before closing: cluster/drain.ts). */
  gateway: AgentGateway;
  close(): Promise<void>;
}

export async function buildHub(deps: HubDeps): Promise<Hub> {
  const { store, log } = deps;
  const leases = deps.leases ?? new LocalLeases();
  const inventory = new InventoryCache(store, log);
  const registry = new NodeRegistry(store, inventory, log);
  await registry.init();
  const enrollment = new Enrollment(store, registry, deps.pki.caDigest);
  const jobs = new JobQueue(store.jobs, deps.secrets);
  const dispatcher = new JobDispatcher({ queue: jobs, registry, log });
  await dispatcher.start();
  const stackStatus = new StackStatusFeed(registry, log);
  const stacks = await buildStacks({ store: store.stacks, registry, jobs, secrets: deps.secrets, log, onStatus: (h) => stackStatus.onStatus(h) });
  const routes = new RouteTable(registry, inventory);
  const edgeSignIn = new EdgeSignIn({ store, secrets: deps.secrets, routes, labelsOf: (name) => stacks.routes.labels.of(name) });
  const edgeCertificates = await EdgeCertificates.open({ store: store.certs, secrets: deps.secrets, log });
  const backupReports = new BackupReportFeed(registry, store.volumeBackups, log, { jobs, records: store });
  const audit = new AuditLog(store, log);
  const volumeKeys = new HubKeptSecrets(store.volumeBackups, deps.secrets);
  const rebuilds = new HostRebuilds({ store, jobs, stacks: stacks.service, registry, secrets: deps.secrets, audit, log, volumeKeys, ...deps.rebuildTuning });
  enrollment.useReplacements(rebuilds);
  await rebuilds.start();
  const alerts = await Alerts.start({
    store: store.alerts,
    secrets: deps.secrets,
    log,
    registry,
    inventory,
    jobs,
    stackStatus,
    tuning: deps.alertTuning ?? {},
    extraSources: [new BackupVerifySource(store.volumeBackups, deps.alertTuning?.backupVerifyMaxAgeMs), new RebuildAlertSource(rebuilds)],
    leases,
  });
  const principals = new Principals(store, (name) => stacks.routes.labels.of(name));
  const caps = new StreamCaps(deps.streamsPerUser);
  const registryAuth = new RegistryAuth(store.registries, deps.secrets);
  // Prometheus metrics (hub/metrics/): reads the parts below at scrape time; counts Docker calls.
  const metrics = new HubMetrics({
    registry,
    inventory,
    jobs,
    auditWriteFailures: () => audit.writeFailures,
    sseClients: () => ({ live: live.clientCount, stats: statsEvents.clientCount }),
    terminalSessions: () => terminals.sessionCount,
  });
  const docker = new DockerGateway({
    registry,
    principals,
    audit,
    log,
    caps,
    registryAuth,
    metrics,
    ...(deps.fleetDeadlineMs === undefined ? {} : { fleetDeadlineMs: deps.fleetDeadlineMs }),
  });
  const gateway = new AgentGateway({
    store,
    registry,
    log,
    ...(deps.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: deps.handshakeTimeoutMs }),
    ...(deps.limiter === undefined ? {} : { limiter: deps.limiter }),
    ...(deps.agentReplicas === undefined ? {} : { replicas: deps.agentReplicas }),
  });
  const events = new FleetEvents(registry, log);
  const releaseStore = deps.releases ? new ReleaseStore(deps.releases.dir, deps.releases.key) : null;
  const releases = releaseStore ? { store: releaseStore, upgrades: new AgentUpgrades({ registry, releases: releaseStore, store: store.agentUpgrades, jobs, log, leases }) } : null;
  await releases?.upgrades.resume(); // before the hub listens: a resumed rollout sees its agents link again
  const app = buildRestApp({
    store,
    registry,
    inventory,
    enrollment,
    principals,
    audit,
    pki: deps.pki,
    log,
    setupCode: deps.setupCode ?? null,
    jobs,
    stacks: stacks.routes,
    routes,
    edgeSignIn,
    edgeCertificates,
    registryAuth,
    events,
    alerts,
    rebuilds,
    volumeKeys,
    releases,
  });
  const restListener = getRequestListener(app.fetch);
  const assets = await buildUi();
  log.info(describeUi(assets), 'web UI built');
  const ui = createUiHandler(assets);
  const live = new LiveStream(registry, inventory, principals);
  const stats = new StatsHub(registry, log);
  const statsEvents = new StatsEvents(stats, principals);
  const terminals = new TerminalBridge({ registry, principals, audit, log, caps });

  return {
    requestListener(req, res) {
      if (isMetricsRequest(req)) return void serveMetrics({ metrics, principals, scrapeTokenHash: deps.scrapeTokenHash ?? null, log }, req, res);
      if (ui(req, res)) return;
      const url = req.url ?? '';
      // Streams stay out of the REST framework so they keep Node's backpressure end to end.
      if (isDockerUrl(url)) return void docker.handleRequest(req, res);
      if (url.split('?')[0] === LIVE_STREAM_PATH && req.method === 'GET') return void live.handle(req, res);
      if (url.split('?')[0] === STATS_STREAM_PATH && req.method === 'GET') return void statsEvents.handle(req, res);
      const files = matchVolumeFiles(url);
      if (files) return void proxyVolumeFiles({ registry, principals, audit, log, caps }, files, req, res);
      return restListener(req, res);
    },
    upgradeListener(req, socket, head) {
      const url = req.url ?? '';
      if (url.split('?')[0] === GATEWAY_PATH) return gateway.handleUpgrade(req, socket, head);
      if (isDockerUrl(url)) return void docker.handleUpgrade(req, socket, head);
      if (isTerminalPath(url)) return void terminals.handleUpgrade(req, socket, head);
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    },
    registry,
    inventory,
    enrollment,
    jobs,
    stackStatus,
    gateway,
    secrets: deps.secrets,
    routes,
    edgeSignIn,
    edgeCertificates,
    alerts,
    restApp: app,
    async close() {
      releases?.upgrades.close();
      await leases.close();
      await alerts.close();
      await rebuilds.close();
      await backupReports.close();
      routes.close();
      live.close();
      events.close();
      statsEvents.close();
      stats.close();
      gateway.close();
      await stacks.close();
      await dispatcher.close();
      await registry.close();
    },
  };
}
