/** The edge's TLS side on real sockets (127.0.0.1): ACME's TLS-ALPN-01 validator (a Node TLS
 * client offering only acme-tls/1) gets the ChallengeBoard's certificate while a challenge is
 * posted and the normal one otherwise, and the connection ends after the handshake; a normal
 * client during a challenge never sees the challenge certificate; bytes that are no ClientHello
 * are closed at once (or at the handshake deadline when they stop), leaving nothing held; and the
 * plain-HTTP port (--edge-http) answers HTTP-01 tokens, 404s unknown ones, and redirects all else
 * to HTTPS with path, query and the edge port kept. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { hubConfigFrom } from '../src/hub/config.ts';
import { runHub, type RunningHub } from '../src/hub/run-hub.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { makeAlpnChallenge, makeCa, makeLeaf, type TestCa, type TestLeaf } from './support/test-certs.ts';
import { removeHubData } from './support/hub-fixture.ts';

let dir: string;
let hub: RunningHub;
let ca: TestCa;
let normal: TestLeaf;
const PER_ADDRESS = 8;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-tls-'));
  const base = hubConfigFrom({ data: dir, listen: '127.0.0.1:0', 'edge-listen': '127.0.0.1:0', 'edge-http': '127.0.0.1:0' });
  hub = await runHub({ ...base, listener: { ...base.listener, handshakeMs: 1_000, headMs: 1_000, bodyStallMs: 1_000, perAddress: PER_ADDRESS } }, silentLogger());
  ca = await makeCa('edge tls test CA');
  normal = await makeLeaf(ca, { names: ['acme.test', 'other.test'] });
  await hub.edgeCertificates.addSupplied(normal.certPem, normal.keyPem);
});

after(async () => {
  await hub?.close();
  if (dir) await removeHubData(dir);
});

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

interface Handshake {
  fingerprint: string;
  alpn: string | false | null;
  closedByServerMs: number | null;
}

/** A TLS handshake offering ALPN; the certificate and protocol the edge chose, and how soon it closed (if it did within 3 s). */
function handshake(servername: string, alpn: string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: hub.edgePort!, servername, ALPNProtocols: alpn, rejectUnauthorized: false }, () => {
      const done = Date.now();
      const result = { fingerprint: socket.getPeerX509Certificate()!.fingerprint256, alpn: socket.alpnProtocol ?? null };
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ ...result, closedByServerMs: null });
      }, 3_000);
      socket.once('end', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ ...result, closedByServerMs: Date.now() - done });
      });
      socket.resume();
    });
    socket.once('error', reject);
  });
}

test('TLS-ALPN-01: a validator offering only acme-tls/1 gets the challenge certificate, then the connection ends', async () => {
  const challenge = await makeAlpnChallenge('acme.test', 'token.thumbprint');
  hub.edgeChallenges.setAlpn('acme.test', { cert: challenge.cert, key: challenge.key });
  try {
    const got = await handshake('acme.test', ['acme-tls/1']);
    assert.equal(got.fingerprint, challenge.fingerprint);
    assert.equal(got.alpn, 'acme-tls/1');
    assert.ok(got.closedByServerMs !== null && got.closedByServerMs < 1_500, `closed after ${got.closedByServerMs} ms`);
    // Anyone else for that name meanwhile gets the normal certificate and a normal protocol.
    for (const alpn of [['h2', 'http/1.1'], ['http/1.1'], []]) {
      const other = await handshake('acme.test', alpn);
      assert.equal(other.fingerprint, fingerprintOf(normal.certPem), `ALPN ${alpn.join(',') || 'none'}`);
      assert.notEqual(other.alpn, 'acme-tls/1');
    }
    // A validator for a name without a challenge gets that name's normal certificate.
    assert.equal((await handshake('other.test', ['acme-tls/1'])).fingerprint, fingerprintOf(normal.certPem));
  } finally {
    hub.edgeChallenges.deleteAlpn('acme.test');
  }
  const after = await handshake('acme.test', ['acme-tls/1']);
  assert.equal(after.fingerprint, fingerprintOf(normal.certPem), 'the normal certificate once the challenge is gone');
  assert.equal(after.alpn, 'acme-tls/1');
  assert.notEqual(after.closedByServerMs, null, 'an acme-tls/1 connection is never served');
});

test('the challenge certificate is found without case, and a normal request still works on the edge', async () => {
  const challenge = await makeAlpnChallenge('acme.test', 'other.thumbprint');
  hub.edgeChallenges.setAlpn('acme.test', { cert: challenge.cert, key: challenge.key });
  try {
    assert.equal((await handshake('ACME.Test', ['acme-tls/1'])).fingerprint, challenge.fingerprint);
    const page = await new Promise<number>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: hub.edgePort!, servername: 'acme.test', ALPNProtocols: ['http/1.1'], ca: ca.certPem }, () => {
        socket.write('GET / HTTP/1.1\r\nHost: acme.test\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString();
      });
      socket.on('end', () => resolve(Number(text.split(' ')[1])));
      socket.on('error', reject);
    });
    assert.equal(page, 404, 'the unknown-host page, over a certificate that verified');
  } finally {
    hub.edgeChallenges.deleteAlpn('acme.test');
  }
});

/** Opens a raw TCP connection, writes BYTES, and resolves with the ms until the edge closes it. */
function rawClosedWithin(bytes: Buffer, withinMs: number): Promise<{ ms: number; received: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: hub.edgePort! }, () => socket.write(bytes));
    const t0 = Date.now();
    let received = 0;
    socket.on('data', (c: Buffer) => {
      received += c.length;
    });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${withinMs} ms`));
    }, withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - t0, received });
    });
  });
}

test('bytes that are no ClientHello are closed at once, a stalled one at the handshake deadline, and nothing is held', async () => {
  const record = (type: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([type, 3, 1, body.length >> 8, body.length & 0xff]), body]);
  const garbage: Array<[string, Buffer]> = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: acme.test\r\n\r\n')],
    ['an alert record', record(21, Buffer.from([2, 40]))],
    ['a ServerHello', record(22, Buffer.from([2, 0, 0, 2, 3, 3]))],
    ['an oversize record', Buffer.from([22, 3, 1, 0xff, 0xff, 1, 2, 3])],
    ['a handshake record inside the ClientHello of another type', Buffer.concat([record(22, Buffer.from([1, 0, 0, 200, 3, 3])), record(23, Buffer.from([0]))])],
    ['random bytes', Buffer.from('8f1b3e0c77aa55', 'hex')],
  ];
  // More connections than the per-address cap: one that was not released would lock the rest out.
  for (let round = 0; round < 3; round++) {
    for (const [what, bytes] of garbage) {
      const { ms, received } = await rawClosedWithin(bytes, 900);
      assert.ok(ms < 900, `${what}: closed after ${ms} ms`);
      assert.equal(received, 0, `${what}: the edge answered garbage`);
    }
  }
  // A ClientHello that stops halfway waits for the handshake deadline, no longer.
  const half = record(22, Buffer.alloc(60, 1));
  half[5] = 1; // ClientHello
  half.writeUIntBE(500, 6, 3);
  const stalled = await rawClosedWithin(half.subarray(0, 40), 4_000);
  assert.ok(stalled.ms >= 800 && stalled.ms < 3_000, `a stalled ClientHello closed after ${stalled.ms} ms`);
  assert.equal((await handshake('other.test', ['http/1.1'])).fingerprint, fingerprintOf(normal.certPem), 'the edge still serves');
});

/** One request to the edge's HTTP port. */
function httpGet(path: string, opts: { host?: string; method?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: hub.edgeHttpPort!, path, method: opts.method ?? 'GET', headers: { host: opts.host ?? 'shop.test' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.method === 'POST' ? 'a=1' : undefined);
  });
}

test('--edge-http: an HTTP-01 token is answered from the board, an unknown one is 404', async () => {
  hub.edgeChallenges.setHttp('tok_en-1', 'tok_en-1.thumbprint');
  try {
    const res = await httpGet('/.well-known/acme-challenge/tok_en-1', { host: 'anything.test' });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(res.body, 'tok_en-1.thumbprint');
    assert.equal((await httpGet('/.well-known/acme-challenge/unknown')).status, 404);
    assert.equal((await httpGet('/.well-known/acme-challenge/../../etc/passwd')).status, 404);
  } finally {
    hub.edgeChallenges.deleteHttp('tok_en-1');
  }
  assert.equal((await httpGet('/.well-known/acme-challenge/tok_en-1')).status, 404, 'gone with the challenge');
});

test('--edge-http: everything else is a 308 to HTTPS, same host, path and query, on the edge port', async () => {
  const port = hub.edgePort!;
  const get = await httpGet('/shop/cart?item=3&x=%20y', { host: 'Shop.Test:8080' });
  assert.equal(get.status, 308);
  assert.equal(get.headers.location, `https://shop.test:${port}/shop/cart?item=3&x=%20y`);
  const post = await httpGet('/api/order', { method: 'POST' });
  assert.equal(post.status, 308, 'other methods get 308 too (method and body kept)');
  assert.equal(post.headers.location, `https://shop.test:${port}/api/order`);
  const head = await httpGet('/', { method: 'HEAD' });
  assert.equal(head.status, 308);
  assert.equal(head.headers.location, `https://shop.test:${port}/`);
  const slashes = await httpGet('//evil.test/x');
  assert.equal(slashes.headers.location, `https://shop.test:${port}//evil.test/x`, 'never a redirect to another host');
  assert.equal((await httpGet('/', { host: 'bad host' })).status, 400);
});

test('--edge-http: the edge port is left out of the redirect when it is 443', async () => {
  const { startEdgeHttpListener } = await import('../src/hub/edge/edge-http-listener.ts');
  const listener = await startEdgeHttpListener({
    host: '127.0.0.1',
    port: 0,
    httpsPort: 443,
    limits: hubConfigFrom({}).listener,
    challenges: hub.edgeChallenges,
    log: silentLogger(),
  });
  try {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: listener.port, path: '/a?b=c', headers: { host: 'shop.test' }, agent: false }, resolve).on('error', reject);
    });
    res.resume();
    assert.equal(res.headers.location, 'https://shop.test/a?b=c');
  } finally {
    listener.close();
  }
});

test('--edge-http: the listener limits hold (a dribbled head, a stalled body, the per-address cap)', async () => {
  const connect = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: hub.edgeHttpPort! }, () => resolve(s));
      s.on('error', reject);
    });
  const closedWithin = (s: net.Socket, ms: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = Date.now();
      s.resume();
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`still open after ${ms} ms`));
      }, ms);
      s.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - t0);
      });
    });
  const dribbler = await connect();
  dribbler.write('GET / HTTP/1.1\r\nHost: shop.test\r\n');
  const drip = setInterval(() => {
    if (!dribbler.destroyed) dribbler.write(`X-${Date.now()}: 1\r\n`);
  }, 150);
  try {
    const ms = await closedWithin(dribbler, 4_000);
    assert.ok(ms >= 800, `the dribbled head was cut after ${ms} ms`);
  } finally {
    clearInterval(drip);
  }
  const staller = await connect();
  // A GET with a body that stops (a POST is answered with Connection: close at once).
  staller.write('GET /x HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100\r\n\r\n0123');
  const ms = await closedWithin(staller, 4_000);
  assert.ok(ms >= 800, `the stalled body was cut after ${ms} ms`);
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < PER_ADDRESS; i++) held.push(await connect());
    const refused = await connect();
    assert.ok((await closedWithin(refused, 2_000)) < 1_000, 'a connection over the cap was held');
  } finally {
    for (const s of held) s.destroy();
  }
});
