/** The edge when things go wrong, end to end (real hub in this process, agent process, private
 * engine, an app container running node): a client that stops reading a large download, an
 * idle WebSocket beside a short request idle time, a 2 GiB upload checked byte for byte with
 * bounded memory at hub and agent, the agent's refusal to dial anything but a running
 * container, the container stopped and started, and the node going offline mid-transfer. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, test } from 'node:test';
import { EDGE_DIAL_REASON_HEADER, edgeDialPath } from '../src/protocol/edge-dial.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { startEdgeApp, type EdgeApp } from './support/edge-app.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const MB = 1024 * 1024;
const NODE = 'fault-host';
let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess;
let app: EdgeApp;
let edgePort: number;

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Buffer;
}

function edgeGet(host: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Readable } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: edgePort,
        servername: host,
        path,
        method: opts.method ?? 'GET',
        headers: { host, ...opts.headers },
        rejectUnauthorized: false,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // Nothing here may hang a test: a request that gets no answer at all fails.
    if (!opts.body) req.setTimeout(20_000, () => req.destroy(new Error(`no answer from ${host}${path} within 20 s`)));
    if (opts.body) opts.body.pipe(req);
    else req.end();
  });
}

/** Opens a download and hands back the response as it starts (the caller reads it). */
function openDownload(host: string, path: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: edgePort, servername: host, path, headers: { host }, rejectUnauthorized: false, agent: false }, resolve);
    req.on('error', reject);
    req.end();
  });
}

/** How a response ended: 'complete' only when every byte it announced arrived. */
function outcome(res: IncomingMessage, onData?: (bytes: number) => void): Promise<{ how: 'complete' | 'cut'; bytes: number; at: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    const length = Number(res.headers['content-length']);
    res.on('data', (c: Buffer) => {
      bytes += c.length;
      onData?.(bytes);
    });
    res.once('end', () => resolve({ how: bytes === length ? 'complete' : 'cut', bytes, at: Date.now() }));
    res.once('error', () => resolve({ how: 'cut', bytes, at: Date.now() }));
    res.once('aborted', () => resolve({ how: 'cut', bytes, at: Date.now() }));
    res.once('close', () => resolve({ how: bytes === length ? 'complete' : 'cut', bytes, at: Date.now() }));
  });
}

const json = (a: Answer): any => JSON.parse(a.body.toString());

// The hub runs in this process: live memory (after a full collection) is what it holds.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
function agentRss(): number {
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

function startAgent(args: string[]): DockfleetProcess {
  return spawnDockfleet(['agent', ...args, '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'no-policy.json')]);
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'edgefault' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-faults-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), edgeListen: '127.0.0.1:0' });
  edgePort = hub.edgePort!;
  agent = startAgent(['--hub', hub.url, '--code', await mintCode(hub, NODE)]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  app = await startEdgeApp(engine, 'faulty', {
    'dockfleet.ingress.host': 'big.test',
    'dockfleet.ingress.port': '8080',
    'dockfleet.ingress.idle-timeout': '3',
    'dockfleet.ingress.1.host': 'ws.test',
    'dockfleet.ingress.1.port': '8080',
    'dockfleet.ingress.1.idle-timeout': '1',
    'dockfleet.ingress.2.host': 'up.test',
    'dockfleet.ingress.2.port': '8080',
  });
  let last = '';
  await waitFor(
    async () => {
      const r = await edgeGet('up.test', '/ready').catch((e: Error) => ({ status: 0, body: Buffer.from(e.message) }));
      last = `${r.status} ${r.body.toString().slice(0, 300)}`;
      return r.status === 200;
    },
    30_000,
    'the app to serve',
  ).catch((e: Error) => {
    throw new Error(`${e.message}; last answer: ${last}`);
  });
});

after(async () => {
  await agent?.stop();
  await hub?.stop({ keepData: true });
  if (engine) await stopEngines([engine]);
  await app?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a client that stops reading a 512 MB download: hub memory stays bounded, others are served, and the stalled one ends by the route's idle time (3 s), freeing its connection", {
  timeout: 60_000,
}, async () => {
  const base = liveBytes();
  const openBefore = json(await edgeGet('big.test', '/connections')).open;
  const res = await openDownload('big.test', '/big?mb=512');
  assert.equal(res.statusCode, 200);
  let stalledAt = 0;
  const ended = outcome(res, (bytes) => {
    if (stalledAt === 0 && bytes >= 8 * MB) {
      stalledAt = Date.now();
      res.pause();
    }
  });
  await waitFor(() => stalledAt > 0, 10_000, 'the first 8 MB');
  // While it stalls: the hub holds little, and other requests go through at once.
  await new Promise((r) => setTimeout(r, 1_000));
  let held = liveBytes() - base;
  for (let i = 0; i < 5; i++) {
    const started = Date.now();
    assert.equal((await edgeGet('big.test', `/echo/${i}`)).status, 200);
    assert.ok(Date.now() - started < 1_000, 'a request beside the stalled download took over a second');
  }
  held = Math.min(held, liveBytes() - base);
  assert.ok(held < 16 * MB, `the hub held ${Math.round(held / MB)} MB for a client that stopped reading`);
  // The edge ends it after the route's idle time: the app's connection for it is closed, not kept.
  // (A paused client cannot see the cut until it reads again.)
  await waitFor(async () => json(await edgeGet('big.test', '/connections')).open <= openBefore, 10_000, 'the stalled connection to close at the app');
  const stalledFor = Date.now() - stalledAt;
  assert.ok(stalledFor >= 2_500, `the stalled download was ended ${stalledFor} ms after the client stopped reading (idle time 3 s)`);
  res.resume();
  const end = await ended;
  assert.equal(end.how, 'cut');
  assert.ok(end.bytes < 512 * MB);
});

test("an idle WebSocket outlives the route's request idle time (1 s) and still echoes; a request that idles that long gets 504", { timeout: 60_000 }, async () => {
  const slow = await edgeGet('ws.test', '/wait?ms=2500');
  assert.equal(slow.status, 504);
  assert.match(slow.body.toString(), /ws\.test/);
  const socket = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'ws.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  try {
    let text = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    socket.write('GET /chat HTTP/1.1\r\nhost: ws.test\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n');
    await waitFor(() => text.includes('\n'), 5_000, 'the 101 and the echoed head');
    assert.match(text, /^HTTP\/1\.1 101 /);
    socket.write('ping-1');
    await waitFor(() => text.includes('ping-1'), 5_000, 'the first echo');
    await new Promise((r) => setTimeout(r, 3_500));
    assert.equal(closed, false, 'the idle WebSocket was closed');
    socket.write('ping-2');
    await waitFor(() => text.includes('ping-2'), 5_000, 'the echo after 3.5 s idle');
  } finally {
    socket.destroy();
  }
});

test('a 2 GiB upload arrives byte for byte (sha256 at the container), with bounded memory at the hub and the agent', { timeout: 600_000 }, async () => {
  const total = 2 * 1024 * MB;
  const block = randomBytes(MB);
  const sent = createHash('sha256');
  const baseHub = liveBytes();
  const baseAgent = agentRss();
  let hubPeak = 0;
  let agentPeak = 0;
  let index = 0;
  const body = new Readable({
    highWaterMark: MB,
    read() {
      if (index * MB >= total) return void this.push(null);
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(index, 0);
      sent.update(chunk);
      index++;
      // Four readings along the way.
      if (index % 512 === 0) {
        hubPeak = Math.max(hubPeak, liveBytes() - baseHub);
        agentPeak = Math.max(agentPeak, agentRss() - baseAgent);
      }
      this.push(chunk);
    },
  });
  const res = await edgeGet('up.test', '/sha256', { method: 'POST', body, headers: { 'content-length': String(total), 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 200);
  const seen = json(res);
  assert.equal(seen.bytes, total);
  assert.equal(seen.sha256, sent.digest('hex'));
  assert.ok(hubPeak < 48 * MB, `the hub held ${Math.round(hubPeak / MB)} MB during the upload`);
  assert.ok(agentPeak < 96 * MB, `the agent grew by ${Math.round(agentPeak / MB)} MB during the upload`);
});

test('the agent dials only a running container of its own engine, on a port its own labels publish: not an unknown ID, not a stopped container, not an unlabelled port, not a malformed request', {
  timeout: 60_000,
}, async () => {
  const link = hub.hub.registry.requireLink(NODE);
  const dial = async (path: string): Promise<{ status: number; reason: string }> => {
    const res = await link.request({ method: 'POST', path, timeoutMs: 10_000 });
    res.stream.resume();
    res.stream.close();
    return { status: res.status, reason: String(res.headers[EDGE_DIAL_REASON_HEADER] ?? '') };
  };
  assert.deepEqual(await dial(edgeDialPath(randomBytes(32).toString('hex'), 8080)), { status: 404, reason: 'no_container' });
  const idle = await runContainer(engine, { name: 'never-started', start: false });
  assert.deepEqual(await dial(edgeDialPath(idle, 8080)), { status: 503, reason: 'not_running' });
  assert.deepEqual(await dial('/_dockfleet/v1/edge/dial?container=..%2F..&port=80'), { status: 400, reason: 'bad_request' });
  // One that was just served and then stopped is refused at once (nothing remembered about it is trusted).
  const busy = await runContainer(engine, {
    name: 'served-then-stopped',
    cmd: ['httpd', '-f', '-p', '8080'],
    labels: { 'dockfleet.ingress.host': 'busy.test', 'dockfleet.ingress.port': '8080' },
    config: { ExposedPorts: { '8080/tcp': {}, '22/tcp': {} } },
  });
  assert.equal((await dial(edgeDialPath(busy, 8080))).status, 200);
  // Whatever the hub asks, a port the container's own labels do not publish is not dialled (exposed or not).
  assert.deepEqual(await dial(edgeDialPath(busy, 22)), { status: 403, reason: 'port_not_published' });
  assert.deepEqual(await dial(edgeDialPath(busy, 9999)), { status: 403, reason: 'port_not_published' });
  const unlabelled = await runContainer(engine, { name: 'no-ingress-labels', cmd: ['httpd', '-f', '-p', '8080'], config: { ExposedPorts: { '8080/tcp': {} } } });
  assert.deepEqual(await dial(edgeDialPath(unlabelled, 8080)), { status: 403, reason: 'port_not_published' });
  // A host label without a port publishes the single exposed port.
  const single = await runContainer(engine, {
    name: 'one-exposed-port',
    cmd: ['httpd', '-f', '-p', '8080'],
    labels: { 'dockfleet.ingress.host': 'single.test' },
    config: { ExposedPorts: { '8080/tcp': {} } },
  });
  assert.equal((await dial(edgeDialPath(single, 8080))).status, 200);
  assert.equal((await engineRequest(engine.socketPath, 'POST', `/containers/${busy}/stop?t=0`)).status, 204);
  assert.deepEqual(await dial(edgeDialPath(busy, 8080)), { status: 503, reason: 'not_running' });
});

test('the container stopped: 503 naming the route, never 404; started again: served within 2 s of its start', { timeout: 60_000 }, async () => {
  const stopped = await engineRequest(engine.socketPath, 'POST', `/containers/${app.id}/stop?t=1`);
  assert.equal(stopped.status, 204);
  const down = await waitFor(
    async () => {
      const r = await edgeGet('up.test', '/echo');
      assert.notEqual(r.status, 404, "a stopped container's route answered 404");
      return r.status === 503 ? r : null;
    },
    5_000,
    'a 503',
  );
  assert.match(down.body.toString(), /up\.test/);
  assert.match(down.body.toString(), /faulty.*not running/);
  const started = await engineRequest(engine.socketPath, 'POST', `/containers/${app.id}/start`);
  assert.equal(started.status, 204);
  const startedAt = Date.now();
  await waitFor(
    async () => {
      const r = await edgeGet('up.test', '/echo');
      assert.notEqual(r.status, 404, "a starting container's route answered 404");
      return r.status === 200;
    },
    2_000,
    'the route to serve again within 2 s',
  );
  assert.ok(Date.now() - startedAt < 2_000);
});

test('the node goes offline mid-transfer: the download ends cut, not hung; new requests get 502 naming the route; the agent back, served within 2 s', { timeout: 60_000 }, async () => {
  const res = await openDownload('big.test', '/big?mb=2048');
  let killedAt = 0;
  const ended = outcome(res, (bytes) => {
    if (killedAt === 0 && bytes >= 16 * MB) {
      killedAt = Date.now();
      agent.signal('SIGKILL');
    }
  });
  const end = await ended;
  assert.equal(end.how, 'cut');
  assert.ok(end.bytes < 2048 * MB);
  assert.ok(end.at - killedAt < 5_000, `the cut download took ${end.at - killedAt} ms to end`);
  await agent.exited;
  const down = await waitFor(
    async () => {
      const r = await edgeGet('big.test', '/echo');
      return r.status === 502 ? r : null;
    },
    5_000,
    'a 502',
  );
  assert.match(down.body.toString(), /big\.test/);
  assert.match(down.body.toString(), new RegExp(`${NODE}.*(offline|went away|closed)`));
  agent = startAgent([]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
  const connectedAt = Date.now();
  await waitFor(async () => (await edgeGet('big.test', '/echo')).status === 200, 2_000, 'the route to serve within 2 s of the agent connecting');
  assert.ok(Date.now() - connectedAt < 2_000);
});

test('a host whose policy turns ingress off: the agent refuses every edge connection and the client gets a 502 page saying so; the node itself stays online', { timeout: 60_000 }, async () => {
  const { writeFile } = await import('node:fs/promises');
  const policy = join(dir, 'no-ingress-policy.json');
  await writeFile(policy, JSON.stringify({ sections: { ping: true, version: true, info: true, events: true, containers: true } }));
  await agent.stop();
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', policy]);
  try {
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
    const refused = await waitFor(
      async () => {
        const r = await edgeGet('up.test', '/ready');
        return r.status === 502 ? r : null;
      },
      10_000,
      'the edge to be refused by policy',
    );
    assert.match(refused.body.toString(), /policy on node fault-host does not let the edge reach its containers \(sections\.ingress\)/);
    assert.equal((await hub.api('GET', `/api/v1/nodes/${NODE}/containers`)).status, 200);
  } finally {
    await agent.stop();
    agent = startAgent(['--hub', hub.url]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  }
});
