/**
 * One container's ingress labels → its route claims, each either valid or carrying the reason it
 * is not (pure; no engine, no table). The unindexed set `dockfleet.ingress.KEY` is one claim and
 * each `dockfleet.ingress.N.KEY` another. Nothing is guessed: an unknown key, a bad value or a
 * port the container does not expose is an error on that claim, never a silent default.
 *
 * Port: `.port` if given; else the container's single exposed TCP port. Exposed ports come from
 * the containers list's `Ports` (Docker lists exposed ports there, published or not, while the
 * container runs; a stopped container lists none, so `exposed` is then null: unknown, an explicit
 * `.port` is taken on trust and a missing one leaves `port` null until the container runs).
 */
import {
  ACCESS,
  HOSTNAME,
  IDLE_TIMEOUT_MAX_S,
  IDLE_TIMEOUT_MIN_S,
  INGRESS_KEYS,
  INGRESS_PREFIX,
  INGRESS_PROTOCOLS,
  MAX_ROUTE_INDEX,
  type IngressKey,
  type IngressProtocol,
} from '../../protocol/ingress.ts';
import { accessProblem } from './access/access-levels.ts';

export interface RouteClaim {
  /** '' for the unindexed set, else the index as written ('1', '2', …). */
  index: string;
  host: string;
  path: string;
  port: number | null;
  protocol: IngressProtocol;
  access: string;
  /** `.idle-timeout` in seconds; null when not set (the edge's default applies). */
  idleTimeout: number | null;
  /** Why the claim cannot be served; null when the labels are good. */
  error: string | null;
}

const INDEXED = /^(0|[1-9][0-9]*)\.([a-z][a-z-]*)$/;
const MAX_PATH = 1024;

/** True for a label the ingress grammar owns (`dockfleet.ingress.` and anything under it). */
export function isIngressLabel(key: string): boolean {
  return key.startsWith(INGRESS_PREFIX);
}

/** The claims one container's labels make; [] when it has no ingress labels. */
export function routesFromLabels(labels: Record<string, string>, exposed: readonly number[] | null): RouteClaim[] {
  const groups = new Map<string, Partial<Record<IngressKey, string>>>();
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(labels)) {
    if (!isIngressLabel(key)) continue;
    const rest = key.slice(INGRESS_PREFIX.length);
    let index = '';
    let name = rest;
    const indexed = INDEXED.exec(rest);
    if (indexed) [, index = '', name = ''] = indexed;
    if (!(INGRESS_KEYS as readonly string[]).includes(name) || (index !== '' && Number(index) > MAX_ROUTE_INDEX)) {
      unknown.push(key);
      continue;
    }
    let group = groups.get(index);
    if (!group) groups.set(index, (group = {}));
    group[name as IngressKey] = value;
  }
  const claims = [...groups].sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : Number(a) - Number(b))).map(([index, group]) => claimFrom(index, group, exposed));
  if (unknown.length > 0) {
    const error = `unknown label ${unknown.sort().join(', ')} (known: ${INGRESS_KEYS.map((k) => `${INGRESS_PREFIX}[N.]${k}`).join(', ')})`;
    // The container's claims all carry it: a typo may have meant any of them.
    if (claims.length === 0) claims.push(emptyClaim('', error));
    for (const claim of claims) claim.error ??= error;
  }
  return claims;
}

function emptyClaim(index: string, error: string): RouteClaim {
  return { index, host: '', path: '/', port: null, protocol: 'http', access: 'public', idleTimeout: null, error };
}

function claimFrom(index: string, group: Partial<Record<IngressKey, string>>, exposed: readonly number[] | null): RouteClaim {
  const label = (key: IngressKey): string => `${INGRESS_PREFIX}${index === '' ? '' : `${index}.`}${key}`;
  const host = group.host ?? '';
  const path = group.path ?? '/';
  const protocol = (INGRESS_PROTOCOLS as readonly string[]).includes(group.protocol ?? 'http') ? ((group.protocol ?? 'http') as IngressProtocol) : 'http';
  const access = group.access ?? 'public';
  const claim: RouteClaim = { index, host, path, port: null, protocol, access, idleTimeout: null, error: null };
  const fail = (error: string): RouteClaim => ({ ...claim, error });

  if (group.host === undefined) return fail(`${label('host')} is missing`);
  if (!HOSTNAME.test(host)) return fail(`${label('host')}: "${clip(host)}" is not a lowercase host name (RFC 1123, no wildcard, no port)`);
  const pathProblem = checkPath(path);
  if (pathProblem) return fail(`${label('path')}: ${pathProblem}`);
  // '/api/' and '/api' are one prefix (matching is by whole segments).
  if (path.length > 1 && path.endsWith('/')) claim.path = path.slice(0, -1);
  if (group.protocol !== undefined && group.protocol !== protocol) {
    return fail(`${label('protocol')}: "${clip(group.protocol)}" is not one of ${INGRESS_PROTOCOLS.join(', ')}`);
  }
  if (!ACCESS.test(access)) return fail(`${label('access')}: "${clip(access)}" is not public, users or a role name`);
  if (group['idle-timeout'] !== undefined) {
    const text = group['idle-timeout'];
    const seconds = /^[1-9][0-9]{0,5}$/.test(text) ? Number(text) : NaN;
    if (!(seconds >= IDLE_TIMEOUT_MIN_S && seconds <= IDLE_TIMEOUT_MAX_S)) {
      return fail(`${label('idle-timeout')}: "${clip(text)}" is not a whole number of seconds from ${IDLE_TIMEOUT_MIN_S} to ${IDLE_TIMEOUT_MAX_S}`);
    }
    claim.idleTimeout = seconds;
  }
  const unknownAccess = accessProblem(access);
  if (unknownAccess) return fail(`${label('access')}: ${unknownAccess}`);

  if (group.port !== undefined) {
    if (!/^[1-9][0-9]{0,4}$/.test(group.port) || Number(group.port) > 65_535) {
      return fail(`${label('port')}: "${clip(group.port)}" is not a port (1-65535)`);
    }
    const port = Number(group.port);
    if (exposed && !exposed.includes(port)) {
      return { ...fail(`${label('port')}: the container does not expose ${port}/tcp (exposes ${describe(exposed)})`), port };
    }
    return { ...claim, port };
  }
  // Stopped, never seen running: the port is settled when it runs; meanwhile the route stays (503, not 404).
  if (exposed === null) return claim;
  if (exposed.length !== 1) return fail(`${label('port')} is missing and the container exposes ${describe(exposed)}: say which`);
  return { ...claim, port: exposed[0] ?? null };
}

function checkPath(path: string): string | null {
  if (!path.startsWith('/')) return `"${clip(path)}" must start with /`;
  if (path.length > MAX_PATH) return `longer than ${MAX_PATH} characters`;
  // Control characters, spaces, and what a client could not send unescaped in a path prefix.
  if (/[\u0000-\u0020\u007f-\uffff?#\\%]/.test(path)) return `"${clip(path)}" has a character not allowed in a path prefix`;
  if (path.split('/').some((seg) => seg === '..' || seg === '.')) return `"${clip(path)}" has a . or .. segment`;
  if (path.includes('//')) return `"${clip(path)}" has an empty segment`;
  return null;
}

function describe(ports: readonly number[]): string {
  return ports.length === 0 ? 'no port' : ports.map((p) => `${p}/tcp`).join(', ');
}

/** Label values are the user's own text; bounded so one label cannot flood a view. */
function clip(value: string): string {
  const printable = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  return printable.length > 80 ? `${printable.slice(0, 80)}…` : printable;
}
