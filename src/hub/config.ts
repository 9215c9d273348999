/** The hub's configuration: defaults, then flags; validated once, frozen. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseHostPort } from '../lib/host-port.ts';
import { LISTENER_DEFAULTS, type ListenerLimits } from './listener/listener-limits.ts';
import type { BackupScheduleSettings } from './backup/backup-schedule.ts';
import { backupScheduleFrom } from './backup/backup-schedule-config.ts';

export interface HubConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  /** `--master-key FILE`: the master key's file (outside DIR); null: the environment, systemd, or the default beside DIR (backup/master-key.ts). */
  readonly masterKeyFile?: string | null;
  readonly listener: ListenerLimits;
  /** The public edge port for apps published by labels (`--edge-listen`); null: no edge. */
  readonly edge: { readonly host: string; readonly port: number } | null;
  /** The edge's plain-HTTP port (`--edge-http`): ACME HTTP-01 answers and redirects to HTTPS; null: none. */
  readonly edgeHttp: { readonly host: string; readonly port: number } | null;
  /** ACME for the edge's hosts (`--acme-directory`, `--acme-email`, `--acme-ca`); null: no ACME. */
  readonly acme: AcmeConfig | null;
  /** The hub's address as browsers reach it (`--public-url`), for the edge's sign-in redirects; null: the --listen address. */
  readonly publicUrl: string | null;
  /** Scheduled backups of the hub by itself (`--backup-every`, `--backup-dir`, `--backup-keep`, `--backup-recipient`; DOCKFLEET_BACKUP_* too); null: none. */
  readonly backup?: HubBackupConfig | null;
  /** The fleet's release key (`ed25519:…`) that agents pin at enrollment; null: no agent releases. */
  readonly releaseKey?: string | null;
  /** Where the hub keeps its records (`--store`, DOCKFLEET_STORE): SQLite in DIR (the default) or a PostgreSQL database. */
  readonly store?: StoreConfig;
  /** Hub replicas (`--bus nats://…`, DOCKFLEET_BUS, with --replica-id, --peer-listen, --peer-url, --cluster-name); null: a single hub. */
  readonly cluster?: ClusterConfig | null;
}

export interface ClusterConfig {
  /** nats:// URLs of the bus (a password in them is never shown). */
  readonly servers: readonly string[];
  /** Names the cluster's subjects and buckets on the NATS server (default `fleet`). */
  readonly name: string;
  /** This replica's id; null: the one kept in DIR/replica-id (made on first start). */
  readonly replicaId: string | null;
  /** Where the peer port listens (the other replicas call it; mutual TLS). */
  readonly peerHost: string;
  readonly peerPort: number;
  /** The peer port's URL as the other replicas reach it; null: https://<peer host>:<port>. */
  readonly peerUrl: string | null;
  /** How long a stopping replica lets calls in flight finish after telling its agents to move (`--drain-timeout`, default 30 s). */
  readonly drainTimeoutMs?: number;
}

export type StoreConfig = { readonly kind: 'sqlite' } | { readonly kind: 'postgres'; readonly url: string };

export interface HubBackupConfig extends BackupScheduleSettings {
  /** An age recipient (age1…); null: the passphrase from DOCKFLEET_BACKUP_PASSPHRASE(_FILE), read at start. */
  readonly recipient: string | null;
}

export interface AcmeConfig {
  /** The ACME server's directory URL (https). */
  readonly directoryUrl: string;
  /** The account's contact address, or null for an account without one. */
  readonly email: string | null;
  /** A PEM file of extra roots to trust for the ACME server's own HTTPS (a private or test CA). */
  readonly caFile: string | null;
}

export interface HubFlags {
  data?: string | undefined;
  listen?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'master-key'?: string | undefined;
  'max-connections-per-address'?: string | undefined;
  'max-agent-links-per-address'?: string | undefined;
  'edge-listen'?: string | undefined;
  'edge-http'?: string | undefined;
  'acme-directory'?: string | undefined;
  'acme-email'?: string | undefined;
  'acme-ca'?: string | undefined;
  'public-url'?: string | undefined;
  'backup-every'?: string | undefined;
  'backup-dir'?: string | undefined;
  'backup-keep'?: string | undefined;
  'backup-recipient'?: string | undefined;
  'release-key'?: string | undefined;
  'backup-no-master-key'?: boolean | undefined;
  store?: string | undefined;
  bus?: string | undefined;
  'cluster-name'?: string | undefined;
  'replica-id'?: string | undefined;
  'drain-timeout'?: string | undefined;
  'peer-listen'?: string | undefined;
  'peer-url'?: string | undefined;
}

export const HUB_DEFAULTS = { data: './data', listen: '127.0.0.1:7443', peerPort: 7444, clusterName: 'fleet', drainTimeoutMs: 30_000 } as const;

export function hubConfigFrom(flags: HubFlags, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const { host, port } = parseHostPort(flags.listen ?? HUB_DEFAULTS.listen, '--listen');
  const cert = flags['tls-cert'] ?? null;
  const key = flags['tls-key'] ?? null;
  if ((cert === null) !== (key === null)) throw new Error('--tls-cert and --tls-key go together');
  return Object.freeze({
    dataDir: resolve(flags.data ?? HUB_DEFAULTS.data),
    host,
    port,
    tlsCertFile: cert === null ? null : resolve(cert),
    tlsKeyFile: key === null ? null : resolve(key),
    masterKeyFile: flags['master-key'] === undefined ? null : resolve(flags['master-key']),
    edge: flags['edge-listen'] === undefined ? null : Object.freeze(parseHostPort(flags['edge-listen'], '--edge-listen')),
    edgeHttp: edgeHttpFrom(flags),
    acme: acmeFrom(flags),
    publicUrl: publicUrlFrom(flags['public-url']),
    backup: backupScheduleFrom(flags, env),
    releaseKey: releaseKeyFrom(flags['release-key'] ?? env.DOCKFLEET_RELEASE_KEY),
    store: storeFrom(flags.store ?? env.DOCKFLEET_STORE, flags, env),
    cluster: clusterFrom(flags, env, host),
    listener: Object.freeze({
      ...LISTENER_DEFAULTS,
      perAddress: positiveInt(flags['max-connections-per-address'], LISTENER_DEFAULTS.perAddress, '--max-connections-per-address'),
      agentLinksPerAddress: positiveInt(flags['max-agent-links-per-address'], LISTENER_DEFAULTS.agentLinksPerAddress, '--max-agent-links-per-address'),
    }),
  });
}

/** --store / DOCKFLEET_STORE: `sqlite` (the default: DIR/dockfleet.db) or a postgres:// URL. The
 * URL's password never appears in an error (prefer the environment: flags show in `ps`). */
function storeFrom(value: string | undefined, flags: HubFlags, env: NodeJS.ProcessEnv): StoreConfig {
  if (value === undefined || value === '' || value === 'sqlite') return Object.freeze({ kind: 'sqlite' as const });
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error('--store wants sqlite or a postgres://user:password@host:port/database URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error(`--store wants sqlite or a postgres:// URL, not a ${url.protocol.replace(/:$/, '')} URL`);
  if (backupScheduleFrom(flags, env) !== null) {
    throw new Error("scheduled hub backups (--backup-every) copy the SQLite file in DIR; with --store postgres://, back the database up with PostgreSQL's own tools (pg_dump) and DIR apart");
  }
  return Object.freeze({ kind: 'postgres' as const, url: value });
}

/** --bus / DOCKFLEET_BUS: nats:// URLs (comma-separated) of the bus that makes this hub one
 * replica of several. Replicas share their records, so it needs --store postgres://. The peer port
 * defaults to --listen's host, port 7444; a wildcard host needs --peer-url (others must dial a name). */
function clusterFrom(flags: HubFlags, env: NodeJS.ProcessEnv, listenHost: string): ClusterConfig | null {
  const value = flags.bus ?? env.DOCKFLEET_BUS;
  const others = (['cluster-name', 'replica-id', 'peer-listen', 'peer-url', 'drain-timeout'] as const).filter((f) => flags[f] !== undefined);
  if (value === undefined || value === '') {
    if (others.length > 0) throw new Error(`--${others[0]} needs --bus nats://…`);
    return null;
  }
  const servers = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const server of servers) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw new Error(`--bus wants nats://host:port URLs, not "${redactNatsUrl(server)}"`);
    }
    if (url.protocol !== 'nats:' && url.protocol !== 'tls:') throw new Error(`--bus wants nats:// URLs, not a ${url.protocol.replace(/:$/, '')} URL`);
  }
  if (servers.length === 0) throw new Error('--bus wants at least one nats:// URL');
  if ((flags.store ?? env.DOCKFLEET_STORE ?? 'sqlite').startsWith('postgres') === false) {
    throw new Error("--bus needs --store postgres://… (the replicas share one PostgreSQL database; SQLite in DIR is one hub's alone)");
  }
  const name = flags['cluster-name'] ?? HUB_DEFAULTS.clusterName;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new Error(`--cluster-name wants 1-64 of A-Z a-z 0-9 _ -, not "${name}"`);
  const replicaId = flags['replica-id'] ?? null;
  if (replicaId !== null && !REPLICA_ID.test(replicaId)) throw new Error(`--replica-id wants 1-63 lowercase letters, digits or dashes, not "${replicaId}"`);
  const peer = parseHostPort(flags['peer-listen'] ?? `${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${HUB_DEFAULTS.peerPort}`, '--peer-listen');
  let peerUrl: string | null = null;
  if (flags['peer-url'] !== undefined) {
    let url: URL;
    try {
      url = new URL(flags['peer-url']);
    } catch {
      throw new Error(`--peer-url wants an https URL such as https://replica-a.internal:7444, not "${flags['peer-url']}"`);
    }
    if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== ''))
      throw new Error(`--peer-url wants an https origin, not "${flags['peer-url']}"`);
    peerUrl = url.origin;
  } else if (peer.host === '0.0.0.0' || peer.host === '::') throw new Error('--peer-listen on every address needs --peer-url: the URL the other replicas dial');
  return Object.freeze({ servers: Object.freeze(servers), name, replicaId, peerHost: peer.host, peerPort: peer.port, peerUrl, drainTimeoutMs: drainTimeoutFrom(flags['drain-timeout']) });
}

/** --drain-timeout: 1s to 1h (90s, 5m); default 30 s. */
function drainTimeoutFrom(text: string | undefined): number {
  if (text === undefined) return HUB_DEFAULTS.drainTimeoutMs;
  const m = /^([1-9][0-9]{0,4})(s|m)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * (m[2] === 'm' ? 60_000 : 1_000) : NaN;
  if (!(ms >= 1_000 && ms <= 3_600_000)) throw new Error(`--drain-timeout wants 1s to 60m, such as 30s or 2m, not "${text}"`);
  return ms;
}

/** A NATS URL fit for an error: its user and password hidden (as the bus's own redaction, without loading NATS). */
function redactNatsUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1[redacted]@');
}

/** What a replica id may be (it names the replica's certificate). */
export const REPLICA_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** --release-key / DOCKFLEET_RELEASE_KEY: the key itself (`ed25519:…`, from `dockfleet release-key create`) or a file holding it. */
function releaseKeyFrom(value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  let key = value.trim();
  if (!key.startsWith('ed25519:')) {
    try {
      key = readFileSync(resolve(value), 'utf8').trim();
    } catch {
      throw new Error(`--release-key wants a release key (ed25519:…) or a file holding one; cannot read "${value}"`);
    }
  }
  if (!/^ed25519:[A-Za-z0-9_-]{43}$/.test(key)) throw new Error('--release-key: not a release key (ed25519: and 43 base64url characters)');
  return key;
}

/** An https origin (no path, query or credentials): where browsers are sent to sign in for the edge. */
function publicUrlFrom(value: string | undefined): string | null {
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--public-url wants an https URL such as https://hub.example.com, not "${value}"`);
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new Error(`--public-url wants an https origin without path, query or credentials, not "${value}"`);
  }
  return url.origin;
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new Error(`${flag} wants a whole number from 1, not "${value}"`);
  return Number(value);
}

function edgeHttpFrom(flags: HubFlags): HubConfig['edgeHttp'] {
  if (flags['edge-http'] === undefined) return null;
  if (flags['edge-listen'] === undefined) throw new Error("--edge-http needs --edge-listen (it redirects to the edge's HTTPS port)");
  return Object.freeze(parseHostPort(flags['edge-http'], '--edge-http'));
}

function acmeFrom(flags: HubFlags): AcmeConfig | null {
  const directory = flags['acme-directory'];
  if (directory === undefined) {
    if (flags['acme-email'] !== undefined) throw new Error('--acme-email needs --acme-directory');
    if (flags['acme-ca'] !== undefined) throw new Error('--acme-ca needs --acme-directory');
    return null;
  }
  if (flags['edge-listen'] === undefined) throw new Error("--acme-directory needs --edge-listen (certificates are for the edge's hosts)");
  let url: URL;
  try {
    url = new URL(directory);
  } catch {
    throw new Error(`--acme-directory wants a URL, not "${directory}"`);
  }
  if (url.protocol !== 'https:') throw new Error(`--acme-directory must be an https:// URL, not "${directory}"`);
  const email = flags['acme-email'] ?? null;
  if (email !== null && !/^[^\s@<>,;:]+@[^\s@<>,;:]+$/.test(email)) throw new Error(`--acme-email wants an email address, not "${email}"`);
  return Object.freeze({ directoryUrl: url.href, email, caFile: flags['acme-ca'] === undefined ? null : resolve(flags['acme-ca']) });
}
