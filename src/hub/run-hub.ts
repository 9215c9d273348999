/** `dockfleet hub`: reads config once, prepares DIR (PKI, database, admin token), listens. */
import { mkdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { urlHost } from '../lib/host-port.ts';
import type { Logger } from '../lib/logger.ts';
import { ensureAdminToken } from './admin-token.ts';
import { SetupCode } from './auth/setup-code.ts';
import { buildHub, type Hub } from './build-hub.ts';
import type { AlertTuning } from './alerts/alerts.ts';
import type { RebuildTuning } from './rebuild/host-rebuilds.ts';
import type { HubConfig } from './config.ts';
import { hubKeysSealed, loadOrCreateHubPki } from './pki.ts';
import { SecretBox } from './secret-box.ts';
import { loadMasterKey } from './backup/master-key.ts';
import { prepareBackupSchedule } from './backup/backup-schedule.ts';
import { ConnectionGuard } from './listener/connection-guard.ts';
import { AGENT_LINKS_FULL_ANSWER, bodyStalledAnswer, isAgentUpgrade } from './listener/limit-answers.ts';
import { httpServerTimeouts } from './listener/listener-limits.ts';
import { SERVER_CIPHER_PREFERENCE } from './listener/tls-ciphers.ts';
import { EdgeProxy } from './edge/edge-proxy.ts';
import { startEdgeListener, type RunningEdge } from './edge/edge-listener.ts';
import { ChallengeBoard } from './edge/certs/challenge-board.ts';
import { startEdgeHttpListener, type RunningEdgeHttp } from './edge/edge-http-listener.ts';
import type { EdgeCertificates } from './edge/certs/edge-certificates.ts';
import { loadAcmeTrust, startAcme } from './edge/acme/start-acme.ts';
import type { AcmeManager } from './edge/acme/acme-manager.ts';
import type { AcmeTuning } from './edge/acme/acme-schedule.ts';
import { listenOn } from '../lib/listen.ts';
import { serveResticRepos } from './restic-repo/reverse-links.ts';
import { ensureScrapeToken } from './metrics/scrape-token.ts';
import { DRAIN_TIMEOUT_MS, drain } from './cluster/drain.ts';
import { Replica } from './cluster/replica.ts';
import { PgLeases } from './cluster/lease.ts';

export const HUB_INFO_FILE = 'hub.json';
export const DATABASE_FILE = 'dockfleet.db';

export interface RunningHub {
  url: string;
  caDigest: string;
  caPem: string;
  hub: Hub;
  /** This hub's place among the replicas, when `--bus` was given. */
  replica: Replica | null;
  /** The edge port's number, when `--edge-listen` was given. */
  edgePort: number | null;
  /** The edge's plain-HTTP port's number (ACME HTTP-01, redirects), when `--edge-http` was given. */
  edgeHttpPort: number | null;
  /** The edge's certificates (supplied and ACME; ACME stores what it obtains here). */
  edgeCertificates: EdgeCertificates;
  /** ACME challenges in flight, answered by the edge ports (HTTP-01 on --edge-http, TLS-ALPN-01 on --edge-listen). */
  edgeChallenges: ChallengeBoard;
  /** Keeps the routes' certificates from ACME, when `--acme-directory` was given. */
  acme: AcmeManager | null;
  close(): Promise<void>;
}

/** Settings that are not flags: tests tune ACME's timings here. */
export interface RunHubOptions {
  acmeTuning?: Partial<AcmeTuning>;
  /** Alert timings (offline grace, restart loop, delivery retries). */
  alertTuning?: Partial<AlertTuning>;
  /** Host rebuild timings (how long a replacement's agent may take to connect). */
  rebuildTuning?: RebuildTuning;
  /** The hub replicas agents may dial (issue 17); with it, close() drains this replica's agents first. */
  agentReplicas?: () => string[];
  /** Replica timings (heartbeat, expiry, sweeps); tests shorten them. */
  clusterTuning?: { heartbeatMs?: number; expireMs?: number; sweepMs?: number; sweepGraceMs?: number };
}

/** Resolves when no answer is still being written (`answering()` is 0), or after `ms`: a download
 * whose agent side ended while its tail is still in this hub's buffers gets to finish. */
function settled(answering: () => number, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    const check = (): void => {
      if (answering() === 0 || Date.now() >= deadline) resolve();
      else setTimeout(check, 50).unref();
    };
    check();
  });
}

/** Ends each socket (what it holds is sent first) and resolves when all have closed, or after `ms`. */
function hangUp(sockets: Set<TLSSocket>, ms: number): Promise<void> {
  const open = [...sockets].filter((s) => !s.destroyed);
  if (open.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let left = open.length;
    const timer = setTimeout(resolve, ms);
    timer.unref();
    for (const socket of open) {
      socket.once('close', () => {
        if (--left > 0) return;
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    }
  });
}

/** The hub's records: SQLite in DIR, or the PostgreSQL database `--store` names (shared by replicas). */
async function openStore(config: HubConfig, log: Logger): Promise<Store> {
  if (config.store?.kind === 'postgres') {
    const store = new PostgresStore(config.store.url);
    log.info({ store: store.where }, 'records kept in PostgreSQL');
    return store;
  }
  // Created private first: SQLite gives its -wal and -shm files the database file's mode.
  await writeFile(join(config.dataDir, DATABASE_FILE), '', { flag: 'a', mode: 0o600 });
  return new SqliteStore(join(config.dataDir, DATABASE_FILE));
}

export async function runHub(config: HubConfig, log: Logger, options: RunHubOptions = {}): Promise<RunningHub> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const acmeTrust = config.acme === null ? null : await loadAcmeTrust(config.acme); // a bad --acme-ca stops the hub before it listens
  // The master key first, from outside DIR; a missing or wrong one stops the hub before DIR changes.
  const masterKey = await loadMasterKey({ dataDir: config.dataDir, file: config.masterKeyFile ?? null, create: !(await hubKeysSealed(config.dataDir)) });
  const secrets = new SecretBox(masterKey.key);
  const backups = config.backup ? await prepareBackupSchedule(config.backup, config.dataDir) : null; // no folder or key: stop before listening
  const pki = await loadOrCreateHubPki(config.dataDir, {
    hosts: [config.host],
    secrets,
    ...(config.tlsCertFile && config.tlsKeyFile ? { tlsCertFile: config.tlsCertFile, tlsKeyFile: config.tlsKeyFile } : {}),
  });
  const store = await openStore(config, log);
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ applied }, 'database migrations applied');
  await ensureAdminToken(config.dataDir, store);
  const setupCode = await SetupCode.open(config.dataDir, store); // DIR/setup.code while no one can sign in yet

  const scrapeTokenHash = await ensureScrapeToken(config.dataDir); // DIR/metrics.token: opens GET /metrics only
  let replica: Replica | null = null;
  const hub = await buildHub({
    store,
    pki,
    log,
    setupCode,
    secrets,
    scrapeTokenHash,
    releases: config.releaseKey ? { dir: join(config.dataDir, 'releases'), key: config.releaseKey } : null,
    ...(options.alertTuning ? { alertTuning: options.alertTuning } : {}),
    ...(options.rebuildTuning ? { rebuildTuning: options.rebuildTuning } : {}),
    ...(options.agentReplicas ? { agentReplicas: options.agentReplicas } : {}),
    // Replicas hand agents every live replica's URL (the list is read at each handshake).
    ...(!options.agentReplicas && config.cluster ? { agentReplicas: () => replica?.members.agentUrls() ?? [] } : {}),
    // Replicas on one PostgreSQL: work that must run once is driven by the holder of its lease
    // (advisory locks). A single hub, on either store, holds every lease itself: no connection, no polling.
    ...(config.cluster && config.store?.kind === 'postgres' ? { leases: new PgLeases(config.store.url, log) } : {}),
  });
  const backupSchedule = (await backups?.start({ masterKey: masterKey.key, alerts: hub.alerts.book, log })) ?? null;
  const resticRepos = await serveResticRepos(hub.registry, config.dataDir, log); // DIR/restic: volume backups' ciphertext, over each agent's link
  const server = https.createServer(
    {
      cert: pki.serverCertPem,
      key: pki.serverKeyPem,
      minVersion: 'TLSv1.2',
      // AES-128-GCM first: every byte through the gateway is encrypted twice more than on the engine's socket.
      ...SERVER_CIPHER_PREFERENCE,
      // Client certificates are asked for, not required: the docker CLI sends one, agents and
      // token users do not. Each route decides what it accepts.
      requestCert: true,
      rejectUnauthorized: false,
      ca: pki.caCertPem,
      // Hijacked Docker connections half-close: stdin ends while output goes on.
      allowHalfOpen: true,
      // Uploads (docker load, build contexts) may take as long as they keep flowing; a head, a
      // handshake and a silent body may not (the guard's limits).
      ...httpServerTimeouts(config.listener),
    },
    hub.requestListener,
  );
  const guard = new ConnectionGuard({
    limits: config.listener,
    log,
    isAgentUpgrade,
    stallAnswer: bodyStalledAnswer,
    agentLinksFullAnswer: AGENT_LINKS_FULL_ANSWER,
  });
  guard.attach(server);
  server.on('upgrade', guard.guardUpgrades(hub.upgradeListener));
  // Answers still being written (a drain lets them finish: settled() below).
  let answering = 0;
  server.on('request', (_req, res) => {
    answering++;
    res.once('close', () => answering--);
  });
  // Connections open, so that a drain can end them gracefully (hangUp() below).
  const connections = new Set<TLSSocket>();
  server.on('secureConnection', (socket: TLSSocket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  server.on('tlsClientError', () => {});
  // No TLS 1.2 renegotiation: a connection keeps the client certificate it started with (the
  // principal cache relies on it), and a client cannot make the hub redo handshakes at will.
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  const port = await listenOn(server, config.host, config.port);
  const url = `https://${urlHost(config.host, port)}`;
  if (config.cluster) {
    // Joined once listening: members announce this URL to agents. Links that came in before claim now.
    replica = await Replica.start({
      config: config.cluster,
      dataDir: config.dataDir,
      agentUrl: config.publicUrl ?? url,
      pki,
      log,
      localLink: (name) => {
        const node = hub.registry.byName(name);
        const link = node ? hub.registry.link(node.id) : null;
        return node && link ? { link, nodeId: node.id } : null;
      },
      ...(options.clusterTuning ? { tuning: options.clusterTuning } : {}),
    });
    hub.registry.joinCluster(replica);
    // Agents hear of replicas joining and leaving on their link, not only at their next handshake.
    replica.members.on('changed', () => hub.gateway.pushReplicas());
  }
  // The edge: per server name a supplied or ACME certificate from the book, else the hub's own.
  const book = hub.edgeCertificates;
  hub.routes.showTls(book.tlsOf);
  const edgeChallenges = new ChallengeBoard();
  const hubPair = { cert: pki.serverCertPem, key: pki.serverKeyPem };
  const edge: RunningEdge | null =
    config.edge === null
      ? null
      : await startEdgeListener({
          ...config.edge,
          limits: config.listener,
          log,
          challenges: edgeChallenges,
          certificate: (name) => book.forServerName(name) ?? hubPair,
          // Routes marked `users` or a role send browsers to this hub's URL to sign in.
          proxy: new EdgeProxy({ routes: hub.routes, registry: hub.registry, log, access: hub.edgeSignIn.gate(config.publicUrl ?? url) }),
        });
  if (edge) hub.edgeSignIn.servesOn(edge.port);
  const edgeHttp: RunningEdgeHttp | null =
    config.edgeHttp === null || edge === null
      ? null
      : await startEdgeHttpListener({
          ...config.edgeHttp,
          httpsPort: edge.port,
          limits: config.listener,
          challenges: edgeChallenges,
          log,
        });
  const acme =
    config.acme === null || acmeTrust === null || edge === null
      ? null
      : startAcme({
          settings: config.acme,
          trust: acmeTrust,
          hasHttpPort: edgeHttp !== null,
          dataDir: config.dataDir,
          secrets,
          routes: hub.routes,
          book,
          board: edgeChallenges,
          log,
          ...(options.acmeTuning ? { tuning: options.acmeTuning } : {}),
        });
  await writeFile(join(config.dataDir, HUB_INFO_FILE), `${JSON.stringify({ url, caDigest: pki.caDigest }, null, 2)}\n`);

  return {
    url,
    caDigest: pki.caDigest,
    caPem: pki.caCertPem,
    hub,
    replica,
    edgePort: edge?.port ?? null,
    edgeHttpPort: edgeHttp?.port ?? null,
    edgeCertificates: book,
    edgeChallenges,
    acme,
    async close() {
      // A replica hands its agents to the others before it goes, letting calls in flight end; the
      // others list it last meanwhile, and it leaves itself out of the list it hands over.
      const drainMs = config.cluster?.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
      const drainUntil = Date.now() + drainMs;
      const left = (): number => Math.max(0, drainUntil - Date.now());
      await replica?.members.setDraining(true).catch(() => {});
      const draining = hub.gateway.clustered;
      if (draining) await drain(hub.gateway, drainMs, config.publicUrl ?? url);
      await acme?.close();
      await backupSchedule?.close();
      edgeHttp?.close();
      edge?.close();
      // Node's server.close() also destroys connections whose answer has finished, even with
      // its tail still queued below Node: a draining replica stops listening after hangUp().
      if (!draining) server.close();
      guard.close();
      resticRepos.close();
      await hub.close(); // live streams end here
      // The agents' side of a call can end before its client has read the tail (a download still
      // in this hub's buffers): connections still answering get what is left of the drain's bound.
      if (draining) {
        await settled(() => answering, left());
        // A finished answer may still be on its way out (a slow reader's tail, queued below Node
        // where no count sees it): each connection is ended, which sends all it holds first, and
        // the client hangs up once it has read it, within what is left of the bound.
        await hangUp(connections, left());
        server.close();
      }
      await replica?.close(draining ? left() : 0); // after the links closed: off the member list, claims released, bus last
      server.closeAllConnections();
      await store.close();
    },
  };
}
