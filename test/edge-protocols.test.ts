/** The edge's protocols, end to end (real hub, agent process, private engine, an app container
 * running node): HTTP/2 clients by ALPN, the app's three protocols (`http`, `https`, `h2c` with a
 * gRPC-style bidirectional stream and trailers), trailers both ways, X-Forwarded-* the edge's own
 * on HTTP/2 as on HTTP/1.1, backend connections kept and reused, and the access gate's hook. */
import assert from 'node:assert/strict';
import https from 'node:https';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { EDGE_USER_HEADER, type EdgeAccessGate } from '../src/hub/edge/edge-access-gate.ts';
import { startEdgeListener, type RunningEdge } from '../src/hub/edge/edge-listener.ts';
import { EdgeProxy } from '../src/hub/edge/edge-proxy.ts';
import { LISTENER_DEFAULTS } from '../src/hub/listener/listener-limits.ts';
import { loadOrCreateHubPki } from '../src/hub/pki.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { startEdgeApp, type EdgeApp } from './support/edge-app.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess;
let app: EdgeApp;
let edgePort: number;
/** A second edge port on the same hub whose proxy asks `gate` (the hub's own has no sign-in yet). */
let gated: RunningEdge;
const gateCalls: Array<{ host: string; path: string; access: string }> = [];

const gate: EdgeAccessGate = {
  async admit(req, route) {
    gateCalls.push(route);
    if (route.access === 'public') return { pass: true, user: null };
    if (/(^|;\s*)df_edge=good(;|$)/.test(String(req.headers.cookie ?? ''))) return { pass: true, user: 'alice' };
    return { pass: false, status: 302, headers: { location: 'https://hub.test/edge-sign-in', 'content-type': 'text/plain' }, body: 'sign in first\n' };
  },
};

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
}

function h1(opts: { host: string; path?: string; method?: string; headers?: Record<string, string>; body?: string; port?: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: opts.port ?? edgePort,
        servername: opts.host,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: { host: opts.host, ...opts.headers },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), trailers: res.trailers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function h2Session(servername: string, port = edgePort): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

function h2(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string, trailers?: OutgoingHttpHeaders): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined, waitForTrailers: trailers !== undefined });
    if (trailers) stream.once('wantTrailers', () => stream.sendTrailers(trailers));
    let head: IncomingHttpHeaders = {};
    let tail: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.once('response', (h) => {
      head = h;
    });
    stream.once('trailers', (t) => {
      tail = t;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks), trailers: tail }));
    stream.once('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

const json = (a: Answer): any => JSON.parse(a.body.toString());

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'edgeproto' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-proto-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), edgeListen: '127.0.0.1:0' });
  edgePort = hub.edgePort!;
  agent = spawnDockfleet([
    'agent',
    '--hub',
    hub.url,
    '--code',
    await mintCode(hub, 'proto-host'),
    '--state',
    join(dir, 'agent'),
    '--docker',
    engine.dockerHost,
    '--policy',
    join(dir, 'no-policy.json'),
  ]);
  await agent.waitForLine(/agent proto-host connected/);
  app = await startEdgeApp(engine, 'apps', {
    'dockfleet.ingress.host': 'app.test',
    'dockfleet.ingress.port': '8080',
    'dockfleet.ingress.1.host': 'tls.test',
    'dockfleet.ingress.1.port': '8443',
    'dockfleet.ingress.1.protocol': 'https',
    'dockfleet.ingress.2.host': 'grpc.test',
    'dockfleet.ingress.2.port': '9090',
    'dockfleet.ingress.2.protocol': 'h2c',
    'dockfleet.ingress.3.host': 'gate.test',
    'dockfleet.ingress.3.port': '8081',
    'dockfleet.ingress.3.access': 'users',
  });
  const pki = await loadOrCreateHubPki(join(dir, 'gated-pki'), { hosts: ['gate.test'], secrets: new SecretBox(Buffer.alloc(32, 1)) });
  gated = await startEdgeListener({
    host: '127.0.0.1',
    port: 0,
    limits: LISTENER_DEFAULTS,
    log: silentLogger(),
    certificate: () => ({ cert: pki.serverCertPem, key: pki.serverKeyPem }),
    proxy: new EdgeProxy({ routes: hub.hub.routes, registry: hub.hub.registry, log: silentLogger(), access: gate }),
  });
  let last = '';
  for (const host of ['app.test', 'tls.test', 'grpc.test']) {
    await waitFor(
      async () => {
        const r = await h1({ host, path: '/ready' }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
        last = `${host}: ${r.status} ${r.body.toString().slice(0, 300)}`;
        return r.status === 200;
      },
      30_000,
      `${host} to serve`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; last answer: ${last}`);
    });
  }
});

after(async () => {
  gated?.close();
  await agent?.stop();
  await hub?.stop({ keepData: true });
  if (engine) await stopEngines([engine]);
  await app?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('an HTTP/2 client (ALPN h2) gets the app through the edge; no pseudo-header reaches the app; pages come on HTTP/2 too', { timeout: 60_000 }, async () => {
  const session = await h2Session('app.test');
  try {
    assert.equal(session.alpnProtocol, 'h2');
    const res = await h2(session, { ':path': '/echo?x=1', ':authority': 'app.test' });
    assert.equal(res.status, 200);
    const seen = json(res);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/echo?x=1');
    assert.equal(seen.headers.host, 'app.test');
    assert.deepEqual(
      Object.keys(seen.headers).filter((k) => k.startsWith(':')),
      [],
    );
    const unknown = await h2(session, { ':path': '/', ':authority': 'nobody.test' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.toString(), /nobody\.test/);
    // Connection-specific headers never reach an HTTP/2 client (Node would refuse to send them).
    assert.equal(res.headers.connection, undefined);
    assert.equal(res.headers['keep-alive'], undefined);
  } finally {
    session.close();
  }
});

test("X-Forwarded-For, -Proto and -Host are the edge's on HTTP/2 as on HTTP/1.1; Forwarded, X-Real-IP and the user header a client sent are dropped", { timeout: 60_000 }, async () => {
  const spoof = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'http', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6', [EDGE_USER_HEADER]: 'mallory' };
  const session = await h2Session('app.test');
  try {
    for (const res of [await h2(session, { ':path': '/echo', ':authority': 'app.test', ...spoof }), await h1({ host: 'app.test', path: '/echo', headers: spoof })]) {
      assert.equal(res.status, 200);
      const { headers } = json(res);
      assert.equal(headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(headers['x-forwarded-proto'], 'https');
      assert.equal(headers['x-forwarded-host'], 'app.test');
      assert.equal(headers.forwarded, undefined);
      assert.equal(headers['x-real-ip'], undefined);
      assert.equal(headers[EDGE_USER_HEADER], undefined);
      assert.doesNotMatch(JSON.stringify(headers), /6\.6\.6\.6|evil\.test|mallory/);
    }
  } finally {
    session.close();
  }
});

test('trailers pass both ways between an HTTP/2 client and an HTTP/1.1 app', { timeout: 60_000 }, async () => {
  const session = await h2Session('app.test');
  try {
    const res = await h2(session, { ':method': 'POST', ':path': '/trailers', ':authority': 'app.test' }, 'hello', { 'x-client-trailer': 'sent' });
    assert.equal(res.status, 200);
    const seen = json(res);
    assert.equal(seen.bytes, 5);
    assert.deepEqual(seen.trailers, { 'x-client-trailer': 'sent' });
    assert.equal(res.trailers['x-app-trailer'], 'done');
  } finally {
    session.close();
  }
});

/** One gRPC message: flag 0, big-endian length, bytes. */
function grpcFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

test('gRPC to an h2c app: a bidirectional stream (each answer before the next message) with trailers both ways; calls share one app connection', { timeout: 60_000 }, async () => {
  const session = await h2Session('grpc.test');
  try {
    const before = json(await h2(session, { ':path': '/sessions', ':authority': 'grpc.test' }));
    const stream = session.request(
      { ':method': 'POST', ':path': '/echo.Echo/Chat', ':authority': 'grpc.test', 'content-type': 'application/grpc', te: 'trailers' },
      { endStream: false, waitForTrailers: true },
    );
    stream.once('wantTrailers', () => stream.sendTrailers({ 'x-client-trailer': 'bye' }));
    let received = Buffer.alloc(0);
    const waiters: Array<() => void> = [];
    stream.on('data', (c: Buffer) => {
      received = Buffer.concat([received, c]);
      for (const w of waiters.splice(0)) w();
    });
    const responseHead = new Promise<IncomingHttpHeaders>((resolve) => stream.once('response', resolve));
    const trailers = new Promise<IncomingHttpHeaders>((resolve) => stream.once('trailers', resolve));
    const ended = new Promise<void>((resolve, reject) => {
      stream.once('end', resolve);
      stream.once('error', reject);
    });
    const until = async (text: string): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!received.includes(text)) {
        if (Date.now() > deadline) throw new Error(`no "${text}" within 5 s; got ${JSON.stringify(received.toString())}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    };
    stream.write(grpcFrame('one'));
    await until('echo:one');
    stream.write(grpcFrame('two'));
    await until('echo:two');
    stream.end();
    const head = await responseHead;
    assert.equal(head[':status'], 200);
    assert.equal(head['content-type'], 'application/grpc');
    const tail = await trailers;
    await ended;
    assert.equal(tail['grpc-status'], '0');
    assert.equal(tail['grpc-message'], 'done');
    assert.equal(tail['x-messages'], '2');
    assert.equal(tail['x-saw-te'], 'trailers');
    assert.equal(tail['x-client-trailer'], 'bye');
    for (let i = 0; i < 10; i++) assert.equal((await h2(session, { ':path': `/plain/${i}`, ':authority': 'grpc.test' })).status, 200);
    const afterCalls = json(await h2(session, { ':path': '/sessions', ':authority': 'grpc.test' }));
    assert.equal(afterCalls.sessions, before.sessions, 'every call rode the one h2c session the edge keeps');
  } finally {
    session.close();
  }
  // An HTTP/1.1 client reaches the h2c app too (the edge speaks HTTP/2 to it).
  const plain = await h1({ host: 'grpc.test', path: '/plain' });
  assert.equal(plain.status, 200);
  assert.equal(json(plain).authority, 'grpc.test');
});

test("an https app: TLS to the container with the route's host as SNI (its certificate is not verified)", { timeout: 60_000 }, async () => {
  const session = await h2Session('tls.test');
  try {
    for (const res of [await h1({ host: 'tls.test', path: '/echo' }), await h2(session, { ':path': '/echo', ':authority': 'tls.test' })]) {
      assert.equal(res.status, 200);
      const seen = json(res);
      assert.equal(seen.encrypted, true);
      assert.equal(seen.servername, 'tls.test');
      assert.equal(seen.headers.host, 'tls.test');
    }
  } finally {
    session.close();
  }
});

test('backend connections are kept: 20 requests, each on a new client connection, reach the app on one connection', { timeout: 60_000 }, async () => {
  const before = json(await h1({ host: 'app.test', path: '/connections' }));
  for (let i = 0; i < 20; i++) assert.equal((await h1({ host: 'app.test', path: `/echo/${i}` })).status, 200);
  const afterRequests = json(await h1({ host: 'app.test', path: '/connections' }));
  assert.equal(afterRequests.requests - before.requests, 21);
  assert.ok(afterRequests.opened - before.opened <= 1, `the app was opened ${afterRequests.opened - before.opened} connections for 21 requests`);
  const tlsBefore = json(await h1({ host: 'tls.test', path: '/connections' }));
  for (let i = 0; i < 10; i++) assert.equal((await h1({ host: 'tls.test', path: `/echo/${i}` })).status, 200);
  const tlsAfter = json(await h1({ host: 'tls.test', path: '/connections' }));
  assert.ok(tlsAfter.opened - tlsBefore.opened <= 1, `the https app was opened ${tlsAfter.opened - tlsBefore.opened} connections for 11 requests`);
});

/** An upgrade request on a raw TLS connection to `port`; resolves with everything answered within `ms`. */
function rawUpgrade(port: number, host: string, headers: Record<string, string>, send = '', ms = 1_500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: host, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const lines = [`GET /socket HTTP/1.1`, `host: ${host}`, 'connection: Upgrade', 'upgrade: websocket', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (send) setTimeout(() => socket.write(send), 200);
    });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', reject);
  });
}

test('the access gate is asked before any dial: its refusal goes out as it is (HTTP/1.1, HTTP/2, upgrade); on pass the app gets the user and not the edge cookie', { timeout: 60_000 }, async () => {
  const port = gated.port;
  const countBefore = json(await h1({ port, host: 'gate.test', path: '/connections', headers: { cookie: 'df_edge=good' } })).requests;
  gateCalls.length = 0;
  // Refused: the gate's own answer, and the app never sees the request.
  const refusedH1 = await h1({ port, host: 'gate.test', path: '/private' });
  assert.equal(refusedH1.status, 302);
  assert.equal(refusedH1.headers.location, 'https://hub.test/edge-sign-in');
  assert.equal(refusedH1.body.toString(), 'sign in first\n');
  const session = await h2Session('gate.test', port);
  try {
    const refusedH2 = await h2(session, { ':path': '/private', ':authority': 'gate.test' });
    assert.equal(refusedH2.status, 302);
    assert.equal(refusedH2.headers.location, 'https://hub.test/edge-sign-in');
    const refusedUpgrade = await rawUpgrade(port, 'gate.test', {});
    assert.match(refusedUpgrade, /^HTTP\/1\.1 302 /);
    assert.match(refusedUpgrade, /\r\nlocation: https:\/\/hub\.test\/edge-sign-in\r\n/i);
    assert.deepEqual(
      gateCalls.slice(0, 3).map((c) => [c.host, c.path, c.access]),
      Array(3).fill(['gate.test', '/', 'users']),
    );

    // Passed: the user header is the gate's (never the client's), the edge cookie is gone, other cookies stay.
    const cookies = 'other=1; df_edge=good; more=2';
    for (const res of [
      await h1({ port, host: 'gate.test', path: '/echo', headers: { cookie: cookies, [EDGE_USER_HEADER]: 'mallory' } }),
      await h2(session, { ':path': '/echo', ':authority': 'gate.test', cookie: cookies, [EDGE_USER_HEADER]: 'mallory' }),
    ]) {
      assert.equal(res.status, 200);
      const { headers } = json(res);
      assert.equal(headers[EDGE_USER_HEADER], 'alice');
      assert.equal(headers.cookie, 'other=1; more=2');
    }
    const passedUpgrade = await rawUpgrade(port, 'gate.test', { cookie: 'df_edge=good', [EDGE_USER_HEADER]: 'mallory' }, 'ping');
    assert.match(passedUpgrade, /^HTTP\/1\.1 101 /);
    const head = JSON.parse(passedUpgrade.split('\r\n\r\n')[1]!.split('\n')[0]!);
    assert.equal(head.headers[EDGE_USER_HEADER], 'alice');
    assert.equal(head.headers.cookie, undefined);
    assert.match(passedUpgrade, /ping$/);
    // An app may set its own cookies, never the edge's session cookie (it could sign its user out).
    for (const res of [
      await h1({ port, host: 'gate.test', path: '/cookies', headers: { cookie: 'df_edge=good' } }),
      await h2(session, { ':path': '/cookies', ':authority': 'gate.test', cookie: 'df_edge=good' }),
    ]) {
      assert.equal(res.status, 200);
      assert.deepEqual(res.headers['set-cookie'], ['app=1; Path=/']);
    }
    // A public route passes with no user: a client's user header never gets through.
    const open = json(await h2(session, { ':path': '/echo', ':authority': 'app.test', [EDGE_USER_HEADER]: 'mallory' }));
    assert.equal(open.headers[EDGE_USER_HEADER], undefined);
  } finally {
    session.close();
  }
  const countAfter = json(await h1({ port, host: 'gate.test', path: '/connections', headers: { cookie: 'df_edge=good' } })).requests;
  assert.equal(countAfter - countBefore, 5, 'only the passed requests (and this count) reached the app');
});

test("edge connections to one node are capped below the link's stream limit: past the cap a 503 page, while the node's own Docker API still answers; a closed connection frees its place", {
  timeout: 60_000,
}, async () => {
  const pki = await loadOrCreateHubPki(join(dir, 'capped-pki'), { hosts: ['app.test'], secrets: new SecretBox(Buffer.alloc(32, 1)) });
  const proxy = new EdgeProxy({ routes: hub.hub.routes, registry: hub.hub.registry, log: silentLogger(), maxStreamsPerLink: 2 });
  const capped = await startEdgeListener({
    host: '127.0.0.1',
    port: 0,
    limits: LISTENER_DEFAULTS,
    log: silentLogger(),
    certificate: () => ({ cert: pki.serverCertPem, key: pki.serverKeyPem }),
    proxy,
  });
  const held: tls.TLSSocket[] = [];
  try {
    // Two idle WebSockets take both places (each holds its dial stream for as long as it lives).
    for (let i = 0; i < 2; i++) {
      const socket = tls.connect({ host: '127.0.0.1', port: capped.port, servername: 'app.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      held.push(socket);
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.write('GET /socket HTTP/1.1\r\nhost: app.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
      await waitFor(() => /^HTTP\/1\.1 101 /.test(text), 10_000, `upgrade ${i} to be answered`).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(text)}`);
      });
    }
    const refused = await h1({ port: capped.port, host: 'app.test', path: '/echo' });
    assert.equal(refused.status, 503);
    assert.match(refused.body.toString(), /as many edge connections as it may \(2\)/);
    // The node's management path is not behind the edge's connections.
    const ping = await hub.api('GET', '/api/v1/nodes/proto-host/containers');
    assert.equal(ping.status, 200);
    held.shift()!.destroy();
    await waitFor(async () => (await h1({ port: capped.port, host: 'app.test', path: '/echo' })).status === 200, 10_000, 'a freed place to serve again');
  } finally {
    for (const socket of held) socket.destroy();
    capped.close();
    proxy.close();
  }
});
