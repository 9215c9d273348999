/** The hub's configuration: defaults, then flags; validated once, frozen. */
import { resolve } from 'node:path';
import { parseHostPort } from '../lib/host-port.ts';

export interface HubConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
}

export interface HubFlags {
  data?: string | undefined;
  listen?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
}

export const HUB_DEFAULTS = { data: './data', listen: '127.0.0.1:7443' } as const;

export function hubConfigFrom(flags: HubFlags): HubConfig {
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
  });
}
