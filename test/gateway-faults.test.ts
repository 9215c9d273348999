/** The agents' gateway under hostile or broken clients: every case is refused with a clear
 * error code, and the hub stays up and keeps serving well-behaved agents. */
import assert from 'node:assert/strict';
import type http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { connectOnce } from '../src/agent/hub-channel.ts';
import type { AgentIdentity } from '../src/agent/identity.ts';
import { enrollAgent } from '../src/agent/enroll.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { GATEWAY_PATH, GATEWAY_SUBPROTOCOL } from '../src/protocol/handshake.ts';
import { INVENTORY_PATH, NOOP_PATH } from '../src/protocol/inventory.ts';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { authFrameFor, openRawClient, type RawClient, type RawClientOptions } from './support/raw-gateway-client.ts';

let hub: TestHub;
let identity: AgentIdentity;
let privateKeyPem: string;

before(async () => {
  hub = await startTestHub();
  const stateDir = await mkdtemp(join(tmpdir(), 'dockfleet-faults-'));
  identity = await enrollAgent({ hubUrl: new URL(hub.url), code: await mintCode(hub, 'target'), stateDir });
  privateKeyPem = await readFile(join(stateDir, 'key.pem'), 'utf8');
});
after(() => hub.stop());

async function refusedWith(send: (c: RawClient, nonce: string) => void, opts: RawClientOptions = {}): Promise<{ code: string }> {
  const client = await openRawClient(hub.url, hub.caPem, opts);
  const challenge = await client.nextFrame();
  assert.equal(challenge.t, 'challenge');
  send(client, challenge.nonce);
  const frame = await client.nextFrame();
  assert.equal(frame.t, 'error');
  await client.closed;
  return { code: frame.code };
}

test('HTTP/2 bytes before authentication are a protocol error', async () => {
  const r = await refusedWith((c) => c.sendRaw(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')));
  assert.deepEqual(r, { code: 'protocol_error' });
});

test('a stream that does not open with the WebSocket frame header is a protocol error', async () => {
  // A text frame, a short binary frame, plain bytes: only the one endless binary frame is ours.
  for (const start of [Buffer.from([0x81, 0x85, 0, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), Buffer.from([0x82, 0x82, 0, 0, 0, 0, 0x7b, 0x7d]), Buffer.from('{"t":"auth"}\n')]) {
    const client = await openRawClient(hub.url, hub.caPem, { streamStart: start });
    assert.equal((await client.nextFrame()).t, 'challenge');
    const frame = await client.nextFrame();
    assert.deepEqual([frame.t, frame.code], ['error', 'protocol_error']);
    await client.closed;
  }
});

test('a malformed auth frame is a protocol error', async () => {
  assert.equal((await refusedWith((c) => c.send('{"t":"auth","node":'))).code, 'protocol_error');
  assert.equal((await refusedWith((c) => c.send('{"t":"hello"}'))).code, 'protocol_error');
});

test('an oversized handshake frame is refused', async () => {
  assert.equal((await refusedWith((c) => c.send(JSON.stringify({ t: 'auth', pad: 'x'.repeat(20_000) })))).code, 'payload_too_large');
});

test('an unsupported protocol version is refused with a clear message', async () => {
  const r = await refusedWith((c, nonce) => {
    const frame = JSON.parse(authFrameFor(c, nonce, identity.node, identity.keyId, privateKeyPem));
    c.send(JSON.stringify({ ...frame, v: 99 }));
  });
  assert.equal(r.code, 'protocol_error');
});

test('a bad signature, an unknown key and a replayed signature are all unauthenticated', async () => {
  const bad = await refusedWith((c, nonce) => {
    const frame = JSON.parse(authFrameFor(c, nonce, identity.node, identity.keyId, privateKeyPem));
    c.send(JSON.stringify({ ...frame, sig: Buffer.alloc(64).toString('base64url') }));
  });
  assert.equal(bad.code, 'unauthenticated');
  const unknown = await refusedWith((c, nonce) => c.send(authFrameFor(c, nonce, identity.node, 'f'.repeat(32), privateKeyPem)));
  assert.equal(unknown.code, 'unauthenticated');
  // A signature captured from one connection is useless on another (new nonce, new TLS session).
  const first = await openRawClient(hub.url, hub.caPem);
  const captured = authFrameFor(first, (await first.nextFrame()).nonce, identity.node, identity.keyId, privateKeyPem);
  first.terminate();
  const replay = await refusedWith((c) => c.send(captured));
  assert.equal(replay.code, 'unauthenticated');
});

test('a client that opens the gateway and says nothing is dropped after the deadline', async () => {
  const client = await openRawClient(hub.url, hub.caPem);
  const started = Date.now();
  assert.equal((await client.nextFrame()).t, 'challenge');
  const frame = await client.nextFrame(8_000);
  assert.equal(frame.code, 'handshake_timeout');
  await client.closed;
  const took = Date.now() - started;
  assert.ok(took >= 4_500 && took < 7_000, `dropped after ${took} ms`);
});

test('a client without the dockfleet subprotocol is not served', async () => {
  await assert.rejects(openRawClient(hub.url, hub.caPem, { protocol: 'something-else' }));
});

test('a malformed upgrade request gets a clear HTTP error, not a hang', async () => {
  const ask = async (headers: string[]): Promise<string> => {
    const url = new URL(hub.url);
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: hub.caPem, servername: 'localhost' });
    socket.on('error', () => {});
    socket.write([`GET ${GATEWAY_PATH} HTTP/1.1`, `Host: ${url.host}`, 'Connection: Upgrade', 'Upgrade: websocket', ...headers, '', ''].join('\r\n'));
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    return answer;
  };
  const key = `Sec-WebSocket-Key: ${Buffer.alloc(16, 7).toString('base64')}`;
  const protocol = `Sec-WebSocket-Protocol: ${GATEWAY_SUBPROTOCOL}`;
  const noKey = await ask(['Sec-WebSocket-Version: 13', protocol]);
  assert.match(noKey, /^HTTP\/1\.1 400 /);
  assert.match(noKey, /Sec-WebSocket-Key/);
  const oldVersion = await ask([key, 'Sec-WebSocket-Version: 8', protocol]);
  assert.match(oldVersion, /^HTTP\/1\.1 426 /);
  assert.match(oldVersion, /\r\nSec-WebSocket-Version: 13\r\n/);
  const oldProtocol = await ask([key, 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Protocol: dockfleet.h2.v1']);
  assert.match(oldProtocol, /^HTTP\/1\.1 400 /);
  assert.match(oldProtocol, /dockfleet\.h2\.v2/);
});

test('garbage inside an authenticated channel drops that link only', async () => {
  const client = await openRawClient(hub.url, hub.caPem);
  client.send(authFrameFor(client, (await client.nextFrame()).nonce, identity.node, identity.keyId, privateKeyPem));
  assert.equal((await client.nextFrame()).t, 'welcome');
  await waitFor(async () => (await nodeStatus(hub, 'target')) === 'online', 3_000, 'online');
  client.sendRaw(Buffer.from('this is not an HTTP/2 frame at all, not even close'));
  await client.closed;
  await waitFor(async () => (await nodeStatus(hub, 'target')) === 'offline', 3_000, 'offline after garbage');
  assert.equal((await hub.api('GET', '/healthz')).status, 200);
});

/** Runs the real agent channel with a handler that serves a hostile inventory stream. */
async function withInventory(write: (res: http2.Http2ServerResponse) => void, body: (stop: AbortController) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    if (req.url.split('?')[0] === INVENTORY_PATH) return write(res);
    if (req.url === NOOP_PATH) return void res.writeHead(204).end();
    res.writeHead(404).end();
  };
  const session = connectOnce({ hubUrl: new URL(hub.url), identity, handler, log: silentLogger() }, stop.signal).catch(() => null);
  try {
    await body(stop);
  } finally {
    stop.abort();
    await session;
  }
}

test('malformed inventory lines are ignored and the link stays up', async () => {
  await withInventory(
    (res) => {
      res.writeHead(200);
      res.write('not json\n{"t":"section","section":"containers","items":"nope","at":1}\n{"t":"section","section":"bogus","items":[],"at":1}\n');
      res.write(`${JSON.stringify({ t: 'section', section: 'containers', items: [{ Id: 'good', State: 'running' }], at: Date.now() })}\n`);
    },
    async () => {
      const res = await waitFor(
        async () => {
          const r = await hub.api('GET', '/api/v1/nodes/target/containers');
          return r.json.length === 1 ? r : null;
        },
        5_000,
        'the valid line to land',
      );
      assert.equal(res.json[0].Id, 'good');
      assert.equal(await nodeStatus(hub, 'target'), 'online');
      const ping = await hub.api('GET', '/api/v1/nodes/target/ping');
      assert.equal(ping.json.status, 204);
    },
  );
});

test('an oversized inventory line drops the link without the hub buffering it', async () => {
  let closed = false;
  await withInventory(
    (res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 40 && !res.destroyed) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      res.once('close', () => (closed = true));
      pump();
    },
    async () => {
      await waitFor(() => closed, 15_000, 'the hub to drop the link');
      await waitFor(async () => (await nodeStatus(hub, 'target')) === 'offline', 3_000, 'offline');
    },
  );
  assert.equal((await hub.api('GET', '/healthz')).status, 200);
});

test('a request in flight when its agent dies fails at once with node_offline, not a hang', async () => {
  const stop = new AbortController();
  let received = false;
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    if (req.url.split('?')[0] === INVENTORY_PATH) return void res.writeHead(200);
    received = true; // and never answer: the agent dies mid-request
  };
  const session = connectOnce({ hubUrl: new URL(hub.url), identity, handler, log: silentLogger() }, stop.signal).catch(() => null);
  await waitFor(async () => (await nodeStatus(hub, 'target')) === 'online', 5_000, 'online');
  const pending = hub.api('GET', '/api/v1/nodes/target/ping');
  await waitFor(() => received, 5_000, 'the request to reach the agent');
  const killedAt = Date.now();
  stop.abort();
  await session;
  const res = await pending;
  assert.equal(res.status, 502);
  assert.equal(res.json.error.code, 'node_offline');
  assert.ok(Date.now() - killedAt < 1_000, 'answered promptly');
});

test('an answer cut mid-body when its agent dies reaches the Docker client as a cut, never as a shorter whole', async () => {
  const stop = new AbortController();
  const handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void => {
    if (req.url.split('?')[0] === INVENTORY_PATH) return void res.writeHead(200);
    // An export with no length (as the engine sends one): some of it, then the agent is gone.
    res.writeHead(200, { 'content-type': 'application/x-tar' });
    res.write(Buffer.alloc(256 * 1024, 7), () => setTimeout(() => stop.abort(), 200));
  };
  const session = connectOnce({ hubUrl: new URL(hub.url), identity, handler, log: silentLogger() }, stop.signal).catch(() => null);
  await waitFor(async () => (await nodeStatus(hub, 'target')) === 'online', 5_000, 'online');
  const outcome = await new Promise<{ status: number; bytes: number; ended: boolean; failed: string | null }>((resolve) => {
    const req = https.request(new URL('/docker/nodes/target/containers/x/export', hub.url), { ca: hub.caPem, agent: false, headers: { authorization: `Bearer ${hub.token}` } }, (res) => {
      let bytes = 0;
      let ended = false;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (ended = true));
      res.on('error', () => {});
      res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes, ended: ended && res.complete, failed: res.complete ? null : 'aborted' }));
    });
    req.on('error', (err) => resolve({ status: 0, bytes: 0, ended: false, failed: err.message }));
    req.end();
  });
  await session;
  assert.equal(outcome.status, 200);
  assert.ok(outcome.bytes > 0 && outcome.bytes <= 256 * 1024, `some of the answer came (${outcome.bytes} bytes)`);
  assert.equal(outcome.ended, false, 'the client must not see the cut answer end as if whole');
  assert.equal(outcome.failed, 'aborted');
});

// Last: it leaves the node rate-limited for the rest of the window.
test('a node reconnecting in a tight loop is refused with a retry time', async () => {
  const codes: string[] = [];
  let retryAfterMs = 0;
  for (let i = 0; i < 16; i++) {
    const client = await openRawClient(hub.url, hub.caPem);
    client.send(authFrameFor(client, (await client.nextFrame()).nonce, identity.node, identity.keyId, privateKeyPem));
    const frame = await client.nextFrame();
    codes.push(frame.t === 'welcome' ? 'welcome' : frame.code);
    if (frame.t === 'error') retryAfterMs = frame.retryAfterMs;
    client.terminate();
  }
  assert.ok(
    codes.slice(0, 5).every((c) => c === 'welcome'),
    codes.join(),
  );
  assert.equal(codes.at(-1), 'rate_limited');
  assert.ok(retryAfterMs > 1_000 && retryAfterMs <= 10_000, `retry after ${retryAfterMs}`);
  assert.equal((await hub.api('GET', '/healthz')).status, 200);
});
