/**
 * `POST /build?remote=…`: the engine itself fetches a URL (a tarball or a Dockerfile) or
 * clones a git repository, from the host's network — including the host's own loopback.
 * The forms the engine understands (builder/remotecontext, urlutil): `http(s)://…`,
 * `git://…`, `git@host:path`, `github.com/…`; `client-session` is BuildKit's marker for a
 * context sent by the client, not a fetch. Refused unless allow.remoteBuildContexts, and then
 * only to hosts whose every DNS answer is an ordinary remote address: never loopback,
 * link-local, unspecified, multicast or broadcast, nor one of this host's own addresses,
 * including IPv4-mapped IPv6 forms. Hosts spelled unusually (a bare number, hex or octal
 * parts, percent-escapes, user info) are refused rather than guessed at.
 *
 * Limit: the engine looks the name up again when it fetches; a DNS answer that changes in
 * between (rebinding) is not caught here.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { quote } from './refusal-text.ts';

/** The parameter value BuildKit sends when the context comes from the client. */
export const CLIENT_SESSION = 'client-session';

export type RemoteTarget = { host: string; spelled: string };

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;
/** Every label numeric or hex (`2130706433`, `0x7f.1`, `0177.0.0.1`): an inet_aton spelling. */
const LOOSE_IPV4 = /^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$/;

/** A remote as shown in refusals: quoted, with any user information (a token) hidden. */
export function shownRemote(remote: string): string {
  return quote(remote.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1[redacted]@'), 200);
}

/** The host the engine would fetch from, or a refusal phrase. Pure. */
export function remoteTarget(remote: string): RemoteTarget | string {
  if (/[^\x21-\x7e]/.test(remote) || remote.includes('\\')) return `a build context from ${shownRemote(remote)}, which is not a plain URL`;
  const lower = remote.toLowerCase();
  let authority: string;
  if (lower.startsWith('git@')) {
    authority = remote.slice(4).split(':')[0] ?? '';
  } else if (lower.startsWith('github.com/')) {
    authority = 'github.com';
  } else {
    const m = /^(https?|git):\/\/([^/?#]*)/i.exec(remote);
    if (!m) return `a build context from ${shownRemote(remote)}, which is not an http, https or git URL the engine fetches`;
    authority = m[2]!;
  }
  if (authority.includes('@')) return `a build context from ${shownRemote(remote)}, whose host carries user information`;
  const hostPart = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0]!;
  const port = authority.slice(hostPart.length);
  if (port !== '' && !/^:[0-9]{1,5}$/.test(port)) return `a build context from ${shownRemote(remote)}, whose port is not a number`;
  let host = hostPart.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) return `a build context from ${shownRemote(remote)}, whose host is not an IPv6 address`;
    return { host, spelled: remote };
  }
  if (isIP(host) === 4 && host.split('.').every((part) => part === '0' || !part.startsWith('0'))) return { host, spelled: remote };
  if (LOOSE_IPV4.test(host) || !HOST_NAME.test(host)) return `a build context from ${shownRemote(remote)}, whose host ${quote(host)} is spelled unusually`;
  return { host: host.replace(/\.$/, ''), spelled: remote };
}

function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

const inV4 = (address: string, base: string, bits: number): boolean => bits === 0 || ipv4Number(address) >>> (32 - bits) === ipv4Number(base) >>> (32 - bits);

/** An IPv6 address's eight 16-bit groups (a dotted IPv4 tail becomes two); [] when unreadable. */
function v6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '').toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return [];
  const parse = (part: string | undefined): number[] => (part ? part.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)) : []);
  const front = parse(halves[0]);
  const back = parse(halves[1]);
  const groups = halves.length === 1 ? front : [...front, ...new Array<number>(Math.max(0, 8 - front.length - back.length)).fill(0), ...back];
  return groups.length === 8 && !groups.some(Number.isNaN) ? groups : [];
}

/** The IPv4 address an IPv6 address carries (IPv4-mapped, -compatible, NAT64), else null. */
function embeddedV4(groups: readonly number[]): string | null {
  const zeros = (from: number, to: number): boolean => groups.slice(from, to).every((g) => g === 0);
  const mapped = zeros(0, 5) && (groups[5] === 0xffff || groups[5] === 0);
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6);
  if (!mapped && !nat64) return null;
  const [hi, lo] = [groups[6]!, groups[7]!];
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

function v4Reason(v4: string, own: ReadonlySet<string>): string | null {
  if (inV4(v4, '127.0.0.0', 8)) return 'a loopback address';
  if (inV4(v4, '0.0.0.0', 8)) return 'an unspecified address';
  if (inV4(v4, '169.254.0.0', 16)) return 'a link-local address';
  if (inV4(v4, '224.0.0.0', 4) || v4 === '255.255.255.255') return 'a multicast or broadcast address';
  if (own.has(v4)) return "one of this host's own addresses";
  return null;
}

/** Why the engine must not fetch from `address` (a literal IP), or null when it may. */
export function forbiddenAddress(address: string, own: ReadonlySet<string>): string | null {
  if (isIP(address) === 4) return v4Reason(address, own);
  const groups = v6Groups(address);
  if (groups.length !== 8) return 'an address the agent cannot read';
  if (groups.slice(0, 7).every((g) => g === 0) && groups[7]! <= 1) return groups[7] === 1 ? 'a loopback address' : 'an unspecified address';
  const v4 = embeddedV4(groups);
  if (v4 !== null) return v4Reason(v4, own);
  if ((groups[0]! & 0xffc0) === 0xfe80) return 'a link-local address';
  if ((groups[0]! & 0xff00) === 0xff00) return 'a multicast address';
  const key = groups.join(':');
  for (const mine of own) if (isIP(mine) === 6 && v6Groups(mine).join(':') === key) return "one of this host's own addresses";
  return null;
}

/** This host's own addresses, as os.networkInterfaces() lists them (zone ids dropped). */
export function ownAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const entry of list ?? []) out.add(entry.address.replace(/%.*$/, ''));
  return out;
}

/** Resolves the target's host and returns a refusal phrase when any answer is forbidden. */
export async function checkRemoteAddresses(target: RemoteTarget): Promise<string | null> {
  let answers: string[];
  if (isIP(target.host)) {
    answers = [target.host];
  } else {
    try {
      answers = (await lookup(target.host, { all: true, verbatim: true })).map((a) => a.address);
    } catch (err) {
      return `a build context from ${shownRemote(target.spelled)}, whose host ${quote(target.host)} does not resolve here (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  const own = ownAddresses();
  for (const address of answers) {
    const why = forbiddenAddress(address, own);
    if (why) return `a build context from ${shownRemote(target.spelled)}, whose host ${address === target.host ? 'is' : `${quote(target.host)} resolves to ${address},`} ${why}`;
  }
  return null;
}
