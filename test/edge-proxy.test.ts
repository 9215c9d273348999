/** The edge port: a container labelled `dockfleet.ingress.host` on a private engine is reachable
 * at that host on the hub's edge port, through its agent's own connection (real hub, real agent
 * process, real engine). Keep-alive, 50 MB each way byte for byte with bounded hub memory, the
 * pages for an unknown host, a stopped container and an offline node, and smuggling refused.
 * @serial-lane: what the hub holds in flight is the link's window, sized from its measured round
 * trip; beside another busy test file the round trip grows, and so would what "bounded" means. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import https from 'node:https';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, test } from 'node:test';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const MB = 1024 * 1024;
let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess;
let containerId: string;
let edgePort: number;

// busybox httpd (CGI answers end their header lines in CRLF: the edge's parser is strict): a page, a 50 MB file with its digest, and a CGI that answers the digest of what it is sent.
const SERVE = [
  'mkdir -p /www/cgi-bin',
  'echo hello-edge > /www/index.html',
  `dd if=/dev/urandom of=/www/big bs=${MB} count=50 2>/dev/null`,
  'printf \'#!/bin/sh\\necho "Content-Type: text/plain\\r"\\necho "\\r"\\nsha256sum\\n\' > /www/cgi-bin/sum',
  'printf \'#!/bin/sh\\necho "Content-Type: text/plain\\r"\\necho "\\r"\\nenv\\n\' > /www/cgi-bin/env',
  'chmod +x /www/cgi-bin/sum /www/cgi-bin/env',
  'sha256sum /www/big > /www/big.sha',
  // ws.test: answers any upgrade with 101, then echoes every byte (the request head first).
  'printf \'#!/bin/sh\\necho "HTTP/1.1 101 Switching Protocols\\r"\\necho "Upgrade: websocket\\r"\\necho "Connection: Upgrade\\r"\\necho "\\r"\\nexec cat\\n\' > /ws.sh',
  'chmod +x /ws.sh',
  '( nc -ll -p 9000 -e /ws.sh & )',
  'exec httpd -f -p 8080 -h /www',
].join(' && ');

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
  reused: boolean;
}

function edgeRequest(opts: { host?: string; path?: string; method?: string; headers?: Record<string, string>; body?: Readable; agent?: https.Agent; sink?: (chunk: Buffer) => void }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const host = opts.host ?? 'app.test';
    const req = https.request(
      {
        host: '127.0.0.1',
        port: edgePort,
        servername: host,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: { host, ...opts.headers },
        ca: hub.caPem,
        checkServerIdentity: () => undefined,
        agent: opts.agent ?? new https.Agent({ keepAlive: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => (opts.sink ? opts.sink(c) : chunks.push(c)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.body) opts.body.pipe(req);
    else req.end();
  });
}

// The hub runs in this process: live memory (after a full collection) is what it holds.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'edge' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), edgeListen: '127.0.0.1:0' });
  assert.ok(hub.edgePort, 'the hub opened its edge port');
  edgePort = hub.edgePort;
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, 'edge-host'), '--state', join(dir, 'agent'), '--docker', engine.dockerHost]);
  await agent.waitForLine(/agent edge-host connected/);
  containerId = await runContainer(engine, {
    name: 'web',
    cmd: ['sh', '-c', SERVE],
    labels: {
      'dockfleet.ingress.host': 'app.test',
      'dockfleet.ingress.port': '8080',
      'dockfleet.ingress.1.host': 'ws.test',
      'dockfleet.ingress.1.port': '9000',
    },
    config: { ExposedPorts: { '8080/tcp': {}, '9000/tcp': {} } },
  });
  let last = '';
  await waitFor(
    async () => {
      const r = await edgeRequest({ path: '/big.sha' }).catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
      last = `${r.status} ${r.body.toString().replace(/\n/g, ' ').slice(0, 400)}`;
      return r.status === 200;
    },
    20_000,
    'the route to serve',
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last answer: ${last}`);
  });
});

after(async () => {
  await agent?.stop();
  await hub?.stop({ keepData: true });
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a labelled container answers at its host on the edge port', async () => {
  const res = await edgeRequest({});
  assert.equal(res.status, 200);
  assert.equal(res.body.toString().trim(), 'hello-edge');
});

test('keep-alive: a second request reuses the client connection', async () => {
  const keep = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal((await edgeRequest({ agent: keep })).status, 200);
    const second = await edgeRequest({ agent: keep });
    assert.equal(second.status, 200);
    assert.equal(second.reused, true);
  } finally {
    keep.destroy();
  }
});

test('the edge sets X-Forwarded-* and replaces any a client sent', async () => {
  const res = await edgeRequest({ path: '/cgi-bin/env', headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'http' } });
  assert.equal(res.status, 200);
  const env = res.body.toString();
  assert.match(env, /^HTTP_X_FORWARDED_FOR=127\.0\.0\.1$/m);
  assert.match(env, /^HTTP_X_FORWARDED_PROTO=https$/m);
  assert.match(env, /^HTTP_X_FORWARDED_HOST=app\.test$/m);
  assert.doesNotMatch(env, /6\.6\.6\.6|evil\.test/);
});

test('50 MB down to a client that stops reading, and 50 MB up: byte for byte, hub memory bounded', async () => {
  const expected = (await edgeRequest({ path: '/big.sha' })).body.toString().split(/\s+/)[0];
  const base = liveBytes();
  const down = createHash('sha256');
  let downBytes = 0;
  let heldDown = 0;
  const res = await new Promise<Answer>((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: edgePort,
        servername: 'app.test',
        path: '/big',
        headers: { host: 'app.test' },
        ca: hub.caPem,
        checkServerIdentity: () => undefined,
        agent: new https.Agent({ keepAlive: false }),
      },
      (answer) => {
        let paused = false;
        answer.on('data', (c: Buffer) => {
          downBytes += c.length;
          down.update(c);
          if (paused || downBytes < 4 * MB) return;
          // The client stops reading for a while: the edge must hold the rest back, not buffer it.
          paused = true;
          answer.pause();
          // Two readings a second apart, the smaller kept: a transient is not a hold, a buffered body stays.
          setTimeout(() => {
            heldDown = liveBytes() - base;
          }, 1_000);
          setTimeout(() => {
            heldDown = Math.min(heldDown, liveBytes() - base);
            answer.resume();
          }, 2_000);
        });
        answer.on('end', () => resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body: Buffer.alloc(0), reused: false }));
        answer.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.status, 200);
  assert.equal(downBytes, 50 * MB);
  assert.equal(down.digest('hex'), expected);
  assert.ok(heldDown < 16 * MB, `the hub held ${Math.round(heldDown / MB)} MB for a client that stopped reading`);

  const up = createHash('sha256');
  let left = 50 * MB;
  let heldUp = 0;
  const body = new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const chunk = randomBytes(Math.min(256 * 1024, left));
      left -= chunk.length;
      if (left === 25 * MB) heldUp = liveBytes() - base;
      up.update(chunk);
      this.push(chunk);
    },
  });
  const answer = await edgeRequest({ method: 'POST', path: '/cgi-bin/sum', body, headers: { 'content-length': String(50 * MB) } });
  assert.equal(answer.status, 200);
  assert.equal(answer.body.toString().split(/\s+/)[0], up.digest('hex'));
  assert.ok(heldUp < 16 * MB, `the hub held ${Math.round(heldUp / MB)} MB halfway through an upload`);
});

test('an upgrade (WebSocket) passes through: the app answers 101 and bytes flow both ways', async () => {
  const echoed = await new Promise<string>((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: edgePort,
      servername: 'ws.test',
      path: '/socket',
      headers: { host: 'ws.test', connection: 'Upgrade', upgrade: 'websocket', 'x-forwarded-for': '6.6.6.6' },
      ca: hub.caPem,
      checkServerIdentity: () => undefined,
      agent: new https.Agent({ keepAlive: false }),
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('upgrade', (res, socket, head) => {
      assert.equal(res.statusCode, 101);
      let text = head.toString();
      socket.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('ping-edge')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.write('ping-edge');
    });
    req.on('error', reject);
    req.end();
  });
  // The echo holds the request head the app received, then the bytes sent after the 101.
  assert.match(echoed, /^GET \/socket HTTP\/1\.1\r\n/);
  assert.match(echoed, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/i);
  assert.doesNotMatch(echoed, /6\.6\.6\.6/);
  assert.match(echoed, /ping-edge$/);
});

test('an unknown host gets a 404 page naming it', async () => {
  const res = await edgeRequest({ host: 'nobody.test' });
  assert.equal(res.status, 404);
  assert.match(res.body.toString(), /nobody\.test/);
});

/** Writes `request` as raw bytes on a fresh TLS connection to the edge; resolves with all it answers. */
function rawExchange(request: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'app.test', ca: hub.caPem, checkServerIdentity: () => undefined }, () => {
      socket.write(request);
    });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('end', () => resolve(text));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

test('a request with both Content-Length and Transfer-Encoding is refused with 400', async () => {
  const raw = await rawExchange('POST /cgi-bin/sum HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400/);
  assert.doesNotMatch(raw, /HTTP\/1\.1 (200|404)/);
});

test('an obs-folded header and an oversized head are refused, never passed on', async () => {
  const folded = await rawExchange('GET / HTTP/1.1\r\nHost: app.test\r\nX-Folded: one\r\n two\r\n\r\n');
  assert.match(folded, /^HTTP\/1\.1 400/);
  const huge = await rawExchange(`GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  assert.match(huge, /^HTTP\/1\.1 431/);
});

test('a stopped container answers 503 within 2 s, naming the route', async () => {
  const stopped = await engineRequest(engine.socketPath, 'POST', `/containers/${containerId}/stop?t=0`);
  assert.equal(stopped.status, 204);
  const started = Date.now();
  const res = await waitFor(
    async () => {
      const r = await edgeRequest({});
      return r.status === 503 ? r : null;
    },
    2_000,
    'a 503',
  );
  assert.ok(Date.now() - started < 2_000);
  assert.match(res.body.toString(), /app\.test/);
  assert.match(res.body.toString(), /not running/);
  await engineRequest(engine.socketPath, 'POST', `/containers/${containerId}/start`);
  await waitFor(async () => (await edgeRequest({})).status === 200, 5_000, 'the route to serve again');
});

test('an offline node answers 502 with a page naming the route and the node', async () => {
  await agent.stop();
  const res = await waitFor(
    async () => {
      const r = await edgeRequest({});
      return r.status === 502 ? r : null;
    },
    5_000,
    'a 502',
  );
  assert.match(res.body.toString(), /app\.test/);
  assert.match(res.body.toString(), /edge-host/);
});
