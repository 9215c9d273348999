/**
 * Dials the hub: TCP (through an HTTP CONNECT proxy when HTTPS_PROXY says so), then TLS that
 * trusts only the hub's CA: either the CA pinned at enrollment, or, on first contact, the CA
 * whose digest the enrollment code carries. Nothing is sent before the hub is verified.
 */
import http from 'node:http';
import net from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { DockfleetError } from '../protocol/errors.ts';
import { peerChainDer, verifyChainToPinnedCa } from '../protocol/ca-digest.ts';

export type HubTrust = { caPem: string } | { caDigest: string };

export interface DialedHub {
  socket: TLSSocket;
  caPem: string;
}

const DIAL_TIMEOUT_MS = 10_000;

export function hubAddress(hubUrl: URL): { host: string; port: number } {
  if (hubUrl.protocol !== 'https:') throw new DockfleetError('bad_request', `--hub must be an https:// URL, got ${hubUrl.href}`);
  const host = hubUrl.hostname.replace(/^\[|\]$/g, '');
  return { host, port: hubUrl.port ? Number(hubUrl.port) : 443 };
}

/** The proxy to use for `host`, per HTTPS_PROXY / NO_PROXY (as curl reads them). */
export function proxyFor(host: string, env: NodeJS.ProcessEnv = process.env): URL | null {
  const proxy = env.HTTPS_PROXY ?? env.https_proxy;
  if (!proxy) return null;
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const h = host.toLowerCase();
  for (const entry of noProxy) {
    if (entry === '*') return null;
    const bare = entry.replace(/^\./, '').replace(/:\d+$/, '');
    if (h === bare || h.endsWith(`.${bare}`)) return null;
  }
  return new URL(proxy.includes('://') ? proxy : `http://${proxy}`);
}

function connectThroughProxy(proxy: URL, host: string, port: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const headers: Record<string, string> = { host: target };
    if (proxy.username) {
      const auth = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(auth).toString('base64')}`;
    }
    const req = http.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: proxy.port ? Number(proxy.port) : 80,
      method: 'CONNECT',
      path: target,
      headers,
      timeout: DIAL_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new DockfleetError('hub_unreachable', `proxy ${proxy.host} refused CONNECT to ${target}: ${res.statusCode}`));
      }
      resolve(socket);
    });
    req.once('timeout', () => req.destroy(new Error('proxy did not answer in time')));
    req.once('error', (err) => reject(new DockfleetError('hub_unreachable', `proxy ${proxy.host}: ${err.message}`, { cause: err })));
    req.end();
  });
}

/** The TLS context that trusts only the pinned CA, made once per CA: parsing the CA for every
 * dial was a third of the CPU of a host redialling a hub that refuses it (10,000 simulated agents
 * after a hub restart). */
let pinnedCache: { caPem: string; context: tls.SecureContext } | null = null;
function pinnedContext(caPem: string): tls.SecureContext {
  if (pinnedCache?.caPem !== caPem) pinnedCache = { caPem, context: tls.createSecureContext({ ca: caPem, minVersion: 'TLSv1.2' }) };
  return pinnedCache.context;
}

export async function dialHub(hubUrl: URL, trust: HubTrust, signal?: AbortSignal): Promise<DialedHub> {
  const { host, port } = hubAddress(hubUrl);
  const proxy = proxyFor(host);
  const raw = proxy ? await connectThroughProxy(proxy, host, port, signal) : undefined;
  const pinned = 'caPem' in trust;
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      ...(raw ? { socket: raw } : { host, port }),
      ...(net.isIP(host) ? {} : { servername: host }),
      ...(pinned ? { secureContext: pinnedContext(trust.caPem) } : { rejectUnauthorized: false, minVersion: 'TLSv1.2' }),
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => s.destroy(new Error('TLS handshake timed out')), DIAL_TIMEOUT_MS);
    const onAbort = (): void => void s.destroy(new Error('aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      clearTimeout(timer);
      // Many small HTTP/2 frames share this one connection: with Nagle's algorithm a frame
      // written while another is unacknowledged waits for the peer's (possibly delayed) ACK.
      s.setNoDelay(true);
      signal?.removeEventListener('abort', onAbort);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const untrusted = /certificate|self.signed|altnames|verify/i.test(err.message);
      reject(new DockfleetError(untrusted ? 'hub_untrusted' : 'hub_unreachable', `hub ${hubUrl.host}: ${err.message}`, { cause: err }));
    });
  });
  if (pinned) return { socket, caPem: trust.caPem };
  try {
    return { socket, caPem: verifyChainToPinnedCa(peerChainDer(socket), trust.caDigest, host).caPem };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
