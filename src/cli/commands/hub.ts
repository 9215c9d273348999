import { parseArgs } from 'node:util';
import { hubConfigFrom } from '../../hub/config.ts';
import { runHub } from '../../hub/run-hub.ts';
import { printSetupCode } from './setup-code.ts';
import { createLogger } from '../../lib/logger.ts';
import { LOG_FLAGS_HELP, LOG_FLAG_OPTIONS, logSettingsFrom } from '../../lib/log-settings.ts';
import type { Command } from '../command.ts';
import { HUB_INSTALL_USAGE } from '../install/install-usage.ts';
import { untilSignal } from '../until-signal.ts';

export const hubCommand: Command = {
  summary: 'run the hub (control plane)',
  usage: `dockfleet hub [--data DIR] [--listen HOST:PORT] [--tls-cert FILE --tls-key FILE] [--master-key FILE] [--max-connections-per-address N] [--max-agent-links-per-address N] [--edge-listen HOST:PORT]
          [--edge-http HOST:PORT] [--acme-directory URL [--acme-email EMAIL] [--acme-ca FILE]] [--public-url URL]
          [--backup-every DURATION --backup-dir PATH [--backup-keep N] [--backup-recipient AGE_KEY] [--backup-no-master-key]]
          [--release-key KEY|FILE] [--store sqlite|postgres://…]
          [--bus nats://… [--replica-id ID] [--peer-listen HOST:PORT] [--peer-url URL] [--cluster-name NAME] [--drain-timeout 30s]] [--log-level LEVEL] [--log-format json|pretty]

  --data DIR          state: CA, database, admin.token, and setup.code until the first admin exists (default ./data)
  --listen HOST:PORT  the one HTTPS port for UI, API, agents and Docker endpoints (default 127.0.0.1:7443)
  --tls-cert FILE     serve this certificate chain instead of one from the hub's private CA
  --tls-key FILE      its private key
  --master-key FILE   the master key that seals the hub's secrets (32 bytes, 0600, outside DIR; made on first start);
                      default DIR.master.key beside DIR; DOCKFLEET_MASTER_KEY (base64), the systemd credential
                      dockfleet-master-key or DOCKFLEET_MASTER_KEY_FILE also give it
  --max-connections-per-address N   connections one client address may hold at once, agent links apart (default 256)
  --max-agent-links-per-address N   agent links one address (a site's NAT) may hold (default 4096)
  --edge-listen HOST:PORT  public HTTPS for apps published by dockfleet.ingress.* labels (off by default)
  --edge-http HOST:PORT    plain HTTP beside it: ACME HTTP-01 answers, everything else redirected to HTTPS
  --acme-directory URL     get and renew the edge's certificates from this ACME server (needs --edge-listen)
  --acme-email EMAIL       the ACME account's contact address
  --acme-ca FILE           extra roots (PEM) to trust for the ACME server's own HTTPS
  --public-url URL         the hub as browsers reach it (behind a proxy or NAT), for the edge's sign-in redirects
  --store sqlite|URL       where records live: sqlite (default, DIR/dockfleet.db) or postgres://user:pass@host/db, which
                           several hub replicas share (DOCKFLEET_STORE too: better for the password than a flag)
  --bus URL[,URL]          join the hub replicas that share this NATS bus (DOCKFLEET_BUS too; needs --store
                           postgres://…): any replica reaches any agent; copy the first replica's DIR and its master
                           key (without DIR/replica-id) to the others before they first start
  --replica-id ID          this replica's name (1-63 of a-z 0-9 -; default: one made once and kept in DIR/replica-id)
  --peer-listen HOST:PORT  the port the other replicas call (mutual TLS, replica certificates only;
                           default --listen's host, port 7444)
  --peer-url URL           that port as the others reach it (default https://HOST:PORT of --peer-listen)
  --cluster-name NAME      names this cluster on the bus, so clusters can share a NATS server (default fleet)
  --drain-timeout DURATION on SIGTERM, how long calls in flight may go on after the agents are told to move (default 30s)
  --release-key KEY|FILE   the fleet's release key (from dockfleet release-key create; or DOCKFLEET_RELEASE_KEY):
                           agents enrolled from now on pin it and accept releases it signed (agents upgrade)
  --backup-every DURATION  back the hub up by itself every DURATION (24h, 30m, 90s) into --backup-dir PATH, keeping
                           the newest --backup-keep N (default 7); encrypted to DOCKFLEET_BACKUP_PASSPHRASE (or _FILE)
                           or --backup-recipient age1…; --backup-no-master-key leaves the master key out
                           (DOCKFLEET_BACKUP_EVERY, _DIR, _KEEP, _RECIPIENT also set them)
${LOG_FLAGS_HELP}

${HUB_INSTALL_USAGE}`,
  async run(args) {
    if (args[0] === 'install' || args[0] === 'uninstall') return (await import('../install/hub-install-command.ts')).runHubInstallCommand(args[0], args.slice(1));
    const { values } = parseArgs({
      args,
      strict: true,
      options: {
        data: { type: 'string' },
        listen: { type: 'string' },
        store: { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'master-key': { type: 'string' },
        'max-connections-per-address': { type: 'string' },
        'max-agent-links-per-address': { type: 'string' },
        'edge-listen': { type: 'string' },
        'edge-http': { type: 'string' },
        'acme-directory': { type: 'string' },
        'acme-email': { type: 'string' },
        'acme-ca': { type: 'string' },
        'public-url': { type: 'string' },
        'backup-every': { type: 'string' },
        'backup-dir': { type: 'string' },
        'backup-keep': { type: 'string' },
        'backup-recipient': { type: 'string' },
        'backup-no-master-key': { type: 'boolean' },
        'release-key': { type: 'string' },
        bus: { type: 'string' },
        'cluster-name': { type: 'string' },
        'replica-id': { type: 'string' },
        'drain-timeout': { type: 'string' },
        'peer-listen': { type: 'string' },
        'peer-url': { type: 'string' },
        ...LOG_FLAG_OPTIONS,
      },
    });
    const logSettings = logSettingsFrom(values);
    const config = hubConfigFrom(values);
    const log = createLogger('hub', logSettings);
    log.debug({ data: config.dataDir, listen: `${config.host}:${config.port}`, edge: config.edge !== null, acme: config.acme !== null, logLevel: logSettings.level }, 'configuration read');
    const running = await runHub(config, log);
    await printSetupCode(config.dataDir);
    process.stdout.write(`hub ready ${running.url}\n`);
    await untilSignal();
    await running.close();
  },
};
