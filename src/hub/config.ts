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
}

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
}

export const HUB_DEFAULTS = { data: './data', listen: '127.0.0.1:7443' } as const;

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
    listener: Object.freeze({
      ...LISTENER_DEFAULTS,
      perAddress: positiveInt(flags['max-connections-per-address'], LISTENER_DEFAULTS.perAddress, '--max-connections-per-address'),
      agentLinksPerAddress: positiveInt(flags['max-agent-links-per-address'], LISTENER_DEFAULTS.agentLinksPerAddress, '--max-agent-links-per-address'),
    }),
  });
}

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
