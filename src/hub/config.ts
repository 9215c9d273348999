/** The hub's configuration: defaults, then flags; validated once, frozen. */
import { resolve } from 'node:path';
import { parseHostPort } from '../lib/host-port.ts';
import { LISTENER_DEFAULTS, type ListenerLimits } from './listener/listener-limits.ts';

export interface HubConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  readonly listener: ListenerLimits;
  /** The public edge port for apps published by labels (`--edge-listen`); null: no edge. */
  readonly edge: { readonly host: string; readonly port: number } | null;
}

export interface HubFlags {
  data?: string | undefined;
  listen?: string | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  'max-connections-per-address'?: string | undefined;
  'max-agent-links-per-address'?: string | undefined;
  'edge-listen'?: string | undefined;
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
    edge: flags['edge-listen'] === undefined ? null : Object.freeze(parseHostPort(flags['edge-listen'], '--edge-listen')),
    listener: Object.freeze({
      ...LISTENER_DEFAULTS,
      perAddress: positiveInt(flags['max-connections-per-address'], LISTENER_DEFAULTS.perAddress, '--max-connections-per-address'),
      agentLinksPerAddress: positiveInt(flags['max-agent-links-per-address'], LISTENER_DEFAULTS.agentLinksPerAddress, '--max-agent-links-per-address'),
    }),
  });
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new Error(`${flag} wants a whole number from 1, not "${value}"`);
  return Number(value);
}
