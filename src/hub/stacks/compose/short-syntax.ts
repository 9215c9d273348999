/**
 * Compose's short syntax made long: ports ("127.0.0.1:8080:80/udp"), mounts ("data:/x:ro"),
 * tmpfs ("/run:size=64m"), devices ("/dev/a:/dev/b:rw") and extra hosts ("host=ip").
 * Throws ValueError for what dockfleet refuses (port ranges it cannot pair one to one,
 * relative bind paths: the hub has no working directory on the host).
 */
import type { z } from 'zod';
import type { portMapping, serviceMount } from '../../../protocol/stacks.ts';
import { byteSize, scalarText, ValueError } from './compose-values.ts';

type PortMapping = z.infer<typeof portMapping>;
type ServiceMount = z.infer<typeof serviceMount>;
type Protocol = PortMapping['protocol'];

function portNumber(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw new ValueError(`${JSON.stringify(text)} is not a port`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new ValueError(`port ${port} is out of range 1-65535`);
  return port;
}

/** "8000-8002" → [8000, 8001, 8002]; "80" → [80]. */
function portRange(text: string): number[] {
  const dash = text.indexOf('-');
  if (dash < 0) return [portNumber(text)];
  const from = portNumber(text.slice(0, dash));
  const to = portNumber(text.slice(dash + 1));
  if (to < from || to - from > 1000) throw new ValueError(`${JSON.stringify(text)} is not a usable port range`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function protocolOf(text: string): Protocol {
  if (text === 'tcp' || text === 'udp' || text === 'sctp') return text;
  throw new ValueError(`${JSON.stringify(text)} is not a port protocol (tcp, udp or sctp)`);
}

function pairPorts(hostIp: string, host: string, container: string, protocol: Protocol): PortMapping[] {
  const targets = portRange(container);
  if (host === '') return targets.map((target) => ({ target, published: null, hostIp, protocol }));
  const published = portRange(host);
  if (published.length !== targets.length) {
    throw new ValueError('a host port range must have as many ports as the container range (dockfleet pairs them one to one)');
  }
  return targets.map((target, i) => ({ target, published: published[i] as number, hostIp, protocol }));
}

export function shortPort(value: string | number): PortMapping[] {
  if (typeof value === 'number') return [{ target: portNumber(String(value)), published: null, hostIp: '', protocol: 'tcp' }];
  let text = value.trim();
  let protocol: Protocol = 'tcp';
  const slash = text.lastIndexOf('/');
  if (slash >= 0) {
    protocol = protocolOf(text.slice(slash + 1));
    text = text.slice(0, slash);
  }
  const lastColon = text.lastIndexOf(':');
  if (lastColon < 0) return pairPorts('', '', text, protocol);
  const container = text.slice(lastColon + 1);
  const rest = text.slice(0, lastColon);
  const hostColon = rest.lastIndexOf(':');
  if (hostColon < 0) return pairPorts('', rest, container, protocol);
  const hostIp = rest.slice(0, hostColon).replace(/^\[(.*)\]$/, '$1');
  return pairPorts(hostIp, rest.slice(hostColon + 1), container, protocol);
}

export function longPort(value: Record<string, unknown>): PortMapping[] {
  const protocol = value.protocol === undefined ? 'tcp' : protocolOf(scalarText(value.protocol));
  const hostIp = value.host_ip === undefined ? '' : scalarText(value.host_ip);
  const published = value.published === undefined || value.published === null ? '' : scalarText(value.published);
  return pairPorts(hostIp, published, scalarText(value.target), protocol);
}

function bindSource(source: string): string {
  if (source.startsWith('/')) return source;
  throw new ValueError(`${JSON.stringify(source)} is a relative host path: the hub has no working directory on the host, so give an absolute path`);
}

function isPathLike(source: string): boolean {
  return source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
}

const NO_EFFECT_MODES = new Set(['rw', 'cached', 'delegated', 'consistent']);

export function shortMount(text: string): ServiceMount {
  const parts = text.split(':');
  if (parts.length === 1) return { type: 'volume', source: null, target: text, readOnly: false };
  if (parts.length > 3) throw new ValueError(`${JSON.stringify(text)} is not SOURCE:TARGET[:MODE]`);
  const [source, target, mode = ''] = parts as [string, string, string?];
  let readOnly = false;
  for (const option of mode === '' ? [] : mode.split(',')) {
    if (option === 'ro') readOnly = true;
    else if (!NO_EFFECT_MODES.has(option)) throw new ValueError(`volume mode ${JSON.stringify(option)} is not supported (ro or rw)`);
  }
  if (isPathLike(source)) return { type: 'bind', source: bindSource(source), target, readOnly };
  return { type: 'volume', source, target, readOnly };
}

export function longMount(value: Record<string, unknown>): ServiceMount {
  const type = scalarText(value.type);
  const target = scalarText(value.target);
  const readOnly = value.read_only === true;
  const source = value.source === undefined || value.source === null ? null : scalarText(value.source);
  if (type === 'volume') return { type: 'volume', source, target, readOnly };
  if (type === 'bind') {
    if (source === null) throw new ValueError('a bind mount needs a source');
    const bind = value.bind as Record<string, unknown> | undefined;
    if (bind?.create_host_path === false) throw new ValueError('bind.create_host_path: false is not supported');
    return { type: 'bind', source: bindSource(source), target, readOnly };
  }
  if (type === 'tmpfs') {
    if (source !== null) throw new ValueError('a tmpfs mount takes no source');
    const size = (value.tmpfs as Record<string, unknown> | undefined)?.size;
    return { type: 'tmpfs', target, sizeBytes: size === undefined ? null : byteSize(size) };
  }
  throw new ValueError(`mount type ${JSON.stringify(type)} is not supported (volume, bind or tmpfs)`);
}

/** Service `tmpfs:` entries: "/run" or "/run:size=64m". */
export function shortTmpfs(text: string): ServiceMount {
  const colon = text.indexOf(':');
  if (colon < 0) return { type: 'tmpfs', target: text, sizeBytes: null };
  let sizeBytes: number | null = null;
  for (const option of text.slice(colon + 1).split(',')) {
    const [key, val = ''] = option.split('=');
    if (key === 'size') sizeBytes = byteSize(val);
    else throw new ValueError(`tmpfs option ${JSON.stringify(key)} is not supported (size only)`);
  }
  return { type: 'tmpfs', target: text.slice(0, colon), sizeBytes };
}

export function device(value: unknown): { source: string; target: string; permissions: string } {
  if (value !== null && typeof value === 'object') {
    const long = value as Record<string, unknown>;
    const source = scalarText(long.source);
    return { source, target: long.target === undefined ? source : scalarText(long.target), permissions: long.permissions === undefined ? 'rwm' : scalarText(long.permissions) };
  }
  const [source = '', target = source, permissions = 'rwm', ...extra] = scalarText(value).split(':');
  if (!source.startsWith('/') || extra.length > 0) throw new ValueError(`${JSON.stringify(value)} is not a device path (CDI devices are not supported)`);
  if (!/^[rwm]+$/.test(permissions)) throw new ValueError(`device permissions ${JSON.stringify(permissions)} are not r, w, m`);
  return { source, target, permissions };
}

/** extra_hosts as the Engine API takes them: "host:ip". */
export function extraHosts(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) {
    return value.map((item) => {
      const text = scalarText(item);
      const eq = text.indexOf('=');
      if (eq > 0) return `${text.slice(0, eq)}:${text.slice(eq + 1)}`;
      if (text.indexOf(':') <= 0) throw new ValueError(`${JSON.stringify(text)} is not host:ip or host=ip`);
      return text;
    });
  }
  const out: string[] = [];
  for (const [host, ips] of Object.entries(value as Record<string, unknown>)) {
    for (const ip of Array.isArray(ips) ? ips : [ips]) out.push(`${host}:${scalarText(ip)}`);
  }
  return out;
}
