/** `dockfleet hub`: reads config once, prepares DIR (PKI, database, admin token), listens. */
import { mkdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
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

export const HUB_INFO_FILE = 'hub.json';
export const DATABASE_FILE = 'dockfleet.db';

export interface RunningHub {
  url: string;
  caDigest: string;
  caPem: string;
  hub: Hub;
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
  // Created private first: SQLite gives its -wal and -shm files the database file's mode.
  await writeFile(join(config.dataDir, DATABASE_FILE), '', { flag: 'a', mode: 0o600 });
  const store = new SqliteStore(join(config.dataDir, DATABASE_FILE));
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ applied }, 'database migrations applied');
  await ensureAdminToken(config.dataDir, store);
  const setupCode = await SetupCode.open(config.dataDir, store); // DIR/setup.code while no one can sign in yet

  const scrapeTokenHash = await ensureScrapeToken(config.dataDir); // DIR/metrics.token: opens GET /metrics only
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
  server.on('tlsClientError', () => {});
  // No TLS 1.2 renegotiation: a connection keeps the client certificate it started with (the
  // principal cache relies on it), and a client cannot make the hub redo handshakes at will.
  server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  const port = await listenOn(server, config.host, config.port);
  const url = `https://${urlHost(config.host, port)}`;
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
    edgePort: edge?.port ?? null,
    edgeHttpPort: edgeHttp?.port ?? null,
    edgeCertificates: book,
    edgeChallenges,
    acme,
    async close() {
      await acme?.close();
      await backupSchedule?.close();
      edgeHttp?.close();
      edge?.close();
      server.close();
      guard.close();
      resticRepos.close();
      await hub.close();
      server.closeAllConnections();
      await store.close();
    },
  };
}
