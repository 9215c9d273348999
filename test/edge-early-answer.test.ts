/**
 * The edge when the app answers before the client is done sending: an upload the app refuses
 * with 413 at once and then hangs up on (with a lingering close: its 413 must reach the client
 * every time; and with a reset, which may destroy the 413 before anyone reads it: 413 or 502,
 * never a hang), and a WebSocket-style upgrade whose app resets the
 * connection while the client is still sending; and close-delimited answers (HTTP/1.0 style)
 * the app ends cleanly or resets midway. The client gets the answer (or sees its
 * connection end; a reset answer always as cut, never whole), and afterwards hub and agent
 * stay responsive and keep their memory: the
 * same runaway the gateway once had (gateway-early-answer.test.ts: a stream destroyed before
 * its RST_STREAM went out, nghttp2 asking for its queued body forever, the event loop held)
 * must not happen on the edge's dial streams either. Hub and agent run as processes of their
 * own, so a relapse fails here (no answer within the deadline, memory climbing) instead of
 * stalling the test runner.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { hubRequest } from './support/hub-request.ts';
import { nodeImage } from './support/node-image.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const MiB = 1024 * 1024;
const NODE = 'early-edge';
const UPLOAD = 64 * MiB;
/**
 * What hub or agent may grow by over the whole run. Every hop passes the body with backpressure
 * (a few MiB of windows and socket buffers at most), so neither needs anything near the
 * upload's 64 MiB; the runaway this guards against grew ~100 MB/s, past this within a second.
 */
const RSS_GROWTH_MIB = 64;
/** What either may grow by while it is idle after the answers (a few seconds of samples). */
const RSS_IDLE_CLIMB_MIB = 16;

/** The app: 413 for any upload to /early at once, then a lingering close (/early-reset: closed at
 * once, a reset); /ok answers; an
 * upgrade to /abrupt gets 101, and once 256 KiB of the client's bytes have arrived the app
 * resets the connection (TCP RST) while the client is still sending. */
const SERVER = String.raw`
import http from 'node:http';
import net from 'node:net';
const server = http.createServer((req, res) => {
  req.on('error', () => {});
  if (req.url.startsWith('/early-reset')) {
    // No lingering close: the unread upload makes the kernel answer with a reset, which can
    // destroy the 413 in flight (on any connection, direct or not).
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
    res.end('too large\n');
    res.once('finish', () => setTimeout(() => req.socket.destroy(), 10));
    return;
  }
  if (req.url.startsWith('/early')) {
    // A lingering close, as nginx and Go's server do: the answer, then FIN, then the rest of the
    // upload read and dropped for a while, so the close is not a reset that eats the answer.
    // (Node's server would destroy the socket as soon as an answer with connection: close is
    // written, FIN and reset within a millisecond; a lingering close only sends the FIN.)
    const socket = req.socket;
    socket.destroySoon = () => socket.end();
    res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
    res.end('too large\n');
    res.once('finish', () => {
      req.resume();
      setTimeout(() => req.socket.destroy(), 2000);
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end('ok\n');
});
server.on('upgrade', (req, socket) => {
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  let seen = 0;
  socket.on('data', (c) => {
    seen += c.length;
    if (seen >= 256 * 1024) socket.resetAndDestroy();
  });
  socket.on('error', () => {});
});
server.listen(8080);
// Port 8081 answers close-delimited, HTTP/1.0 style (no Content-Length, no chunking): the end of
// the connection is the end of the body. /whole: 512 KiB, then a clean close (FIN). /cut: 256 KiB,
// then a pause (so the head and some body reach the client) and a TCP reset.
const CUT_PART = Buffer.alloc(256 * 1024, 97);
net.createServer((socket) => {
  socket.on('error', () => {});
  let head = '';
  socket.on('data', (c) => {
    if (head.includes('\r\n\r\n')) return;
    head += c.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    socket.write('HTTP/1.0 200 OK\r\ncontent-type: application/octet-stream\r\n\r\n');
    socket.write(CUT_PART);
    if (head.startsWith('GET /whole')) return void socket.end(CUT_PART);
    setTimeout(() => socket.resetAndDestroy(), 200);
  });
}).listen(8081);
console.log('early app listening');
`;

let engine: TestEngine | undefined;
let hub: DockfleetProcess | undefined;
let agent: DockfleetProcess | undefined;
let work = '';
let hubUrl = '';
let caPem = '';
let edgePort = 0;

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One request to the edge; resolves with the status, or 'no answer' after `deadlineMs`. */
function edgeRequest(host: string, path: string, deadlineMs: number): Promise<number | 'no answer'> {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port: edgePort, servername: host, path, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve(res.statusCode ?? 0);
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve('no answer');
    }, deadlineMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve('no answer');
    });
    req.end();
  });
}

/** A 64 MiB upload in 1 MiB writes, each after the last drained (so the answer comes long before
 * the body is through); resolves with the status once the answer is whole, 'lost (CODE)' when the
 * connection failed before any answer came, or 'no answer' at the deadline. */
function upload(chunked: boolean, deadlineMs: number, path = '/early'): Promise<number | string> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = { host: 'early.test', 'content-type': 'application/octet-stream' };
    if (!chunked) headers['content-length'] = String(UPLOAD);
    let done = false;
    let answered = false;
    const finish = (v: number | string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(v);
    };
    const req = https.request({ host: '127.0.0.1', port: edgePort, servername: 'early.test', path, method: 'PUT', headers, rejectUnauthorized: false, agent: false }, (res) => {
      answered = true;
      res.resume();
      res.on('end', () => finish(res.statusCode ?? 0));
    });
    const timer = setTimeout(() => finish('no answer'), deadlineMs);
    // The edge may stop taking the rest of the body once it has answered: the answer decides.
    // A connection that fails before any answer is no hang, but the answer was lost.
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!answered) finish(`lost (${e.code ?? e.message})`);
    });
    const chunk = Buffer.alloc(MiB, 7);
    let sent = 0;
    const more = (): void => {
      while (!done && sent < UPLOAD) {
        sent += MiB;
        const last = sent >= UPLOAD;
        const ok = last ? (req.end(chunk), true) : req.write(chunk);
        if (!ok) return void req.once('drain', more);
      }
    };
    more();
  });
}

/** An upgrade to /abrupt, then 1 MiB writes until the connection ends; resolves with how it went. */
function abruptUpgrade(deadlineMs: number): Promise<{ upgraded: boolean; ended: boolean; sentMiB: number; head: string }> {
  return new Promise((resolve) => {
    let upgraded = false;
    let head = '';
    let sent = 0;
    let done = false;
    const socket = tls.connect({ host: '127.0.0.1', port: edgePort, servername: 'early.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
    const finish = (ended: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ upgraded, ended, sentMiB: sent, head: head.slice(0, 200) });
    };
    const timer = setTimeout(() => finish(false), deadlineMs);
    const chunk = Buffer.alloc(MiB, 9);
    const more = (): void => {
      while (!done && !socket.destroyed && !socket.writableEnded) {
        sent++;
        if (!socket.write(chunk)) return void socket.once('drain', more);
      }
    };
    socket.on('data', (c: Buffer) => {
      if (upgraded) return;
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      upgraded = head.startsWith('HTTP/1.1 101');
      if (upgraded) more();
      else finish(true);
    });
    socket.once('secureConnect', () => {
      socket.write('GET /abrupt HTTP/1.1\r\nHost: early.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    socket.once('end', () => finish(true));
    socket.once('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

/** A GET of a close-delimited answer: its status, the bytes that came, and whether the client saw it end whole. */
function closeDelimited(path: string, deadlineMs: number): Promise<{ status: number; bytes: number; how: 'whole' | 'cut' | 'no answer' }> {
  return new Promise((resolve) => {
    let status = 0;
    let bytes = 0;
    let done = false;
    const finish = (how: 'whole' | 'cut' | 'no answer'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ status, bytes, how });
    };
    const req = https.request({ host: '127.0.0.1', port: edgePort, servername: 'closing.test', path, headers: { host: 'closing.test' }, rejectUnauthorized: false, agent: false }, (res) => {
      status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.once('end', () => finish('whole'));
      res.once('aborted', () => finish('cut'));
      res.once('error', () => finish('cut'));
      res.once('close', () => finish(res.complete ? 'whole' : 'cut'));
    });
    const timer = setTimeout(() => finish('no answer'), deadlineMs);
    req.on('error', () => finish('cut'));
    req.end();
  });
}

/** Hub and agent answer quickly, and neither's memory climbs over `ms` of samples. */
async function assertCalm(what: string, startHub: number, startAgent: number): Promise<void> {
  const t0 = Date.now();
  const health = await hubRequest(hubUrl, caPem, '/healthz', { timeoutMs: 1000 }).catch((e: Error) => ({ status: 0, text: e.message }));
  assert.equal(health.status, 200, `${what}: hub /healthz: ${health.text}`);
  const ok = await edgeRequest('early.test', '/ok', 1000);
  assert.equal(ok, 200, `${what}: a second request through the edge (hub and agent) within 1 s`);
  assert.ok(Date.now() - t0 < 2000, `${what}: both answered in ${Date.now() - t0} ms`);
  const hubSamples: number[] = [];
  const agentSamples: number[] = [];
  for (let i = 0; i < 8; i++) {
    hubSamples.push(await rssMiB(hub!.pid));
    agentSamples.push(await rssMiB(agent!.pid));
    await sleep(400);
  }
  const report = `hub ${hubSamples.map((n) => n.toFixed(0)).join(',')} MiB (started ${startHub.toFixed(0)}); agent ${agentSamples.map((n) => n.toFixed(0)).join(',')} MiB (started ${startAgent.toFixed(0)})`;
  for (const [name, samples, start] of [
    ['hub', hubSamples, startHub],
    ['agent', agentSamples, startAgent],
  ] as const) {
    assert.ok(Math.max(...samples) - start < RSS_GROWTH_MIB, `${what}: ${name} grew past ${RSS_GROWTH_MIB} MiB: ${report}`);
    assert.ok(samples.at(-1)! - samples[0]! < RSS_IDLE_CLIMB_MIB, `${what}: ${name} kept climbing while idle: ${report}`);
  }
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'edgeearly' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-edge-early-'));
  edgePort = await freePort();
  hub = spawnDockfleet(['hub', '--data', join(work, 'hub'), '--listen', '127.0.0.1:0', '--edge-listen', `127.0.0.1:${edgePort}`]);
  hubUrl = /hub ready (https:\S+)/.exec(await hub.waitForLine(/hub ready https:/, 30_000))![1]!;
  const token = (await readFile(join(work, 'hub', 'admin.token'), 'utf8')).trim();
  caPem = await readFile(join(work, 'hub', 'pki', 'ca.pem'), 'utf8');
  const code = await hubRequest(hubUrl, caPem, '/api/v1/enrollments', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: NODE }),
  });
  assert.equal(code.status, 201, code.text);
  agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', code.json.code, '--state', join(work, 'agent'), '--docker', engine.dockerHost, '--policy', join(work, 'no-policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
  const appDir = join(work, 'app');
  await mkdir(appDir);
  await writeFile(join(appDir, 'server.mjs'), SERVER);
  await runContainer(engine, {
    name: 'early-app',
    image: await nodeImage(engine),
    cmd: ['node', '/app/server.mjs'],
    labels: {
      'dockfleet.ingress.host': 'early.test',
      'dockfleet.ingress.port': '8080',
      'dockfleet.ingress.1.host': 'closing.test',
      'dockfleet.ingress.1.port': '8081',
    },
    config: { ExposedPorts: { '8080/tcp': {}, '8081/tcp': {} } },
    hostConfig: { Binds: [`${appDir}:/app:ro`] },
  });
  const deadline = Date.now() + 30_000;
  let last: number | 'no answer' = 'no answer';
  while (Date.now() < deadline && (last = await edgeRequest('early.test', '/ok', 2000)) !== 200) await sleep(200);
  assert.equal(last, 200, 'the app serves through the edge');
});

after(async () => {
  if (agent) await agent.stop();
  if (hub) await hub.stop();
  if (engine) await stopEngines([engine]);
  if (work) await rm(work, { recursive: true, force: true });
});

test('an upload the app answers with 413 before reading it: the client gets the answer, hub and agent stay calm', { timeout: 120_000 }, async () => {
  const startHub = await rssMiB(hub!.pid);
  const startAgent = await rssMiB(agent!.pid);
  for (let i = 0; i < 4; i++) {
    const chunked = i % 2 === 1;
    const status = await upload(chunked, 10_000);
    assert.equal(status, 413, `upload ${i + 1} (${chunked ? 'chunked' : 'sized'})`);
    await assertCalm(`after upload ${i + 1}`, startHub, startAgent);
  }
});

test('an upload the app answers with 413 and then resets (no lingering close): the client gets the answer or a 502, hub and agent stay calm', { timeout: 120_000 }, async () => {
  // The app's reset can destroy its own answer in the kernel before anyone reads it, so either
  // outcome is honest here; what must hold is that the edge neither hangs nor runs away.
  const startHub = await rssMiB(hub!.pid);
  const startAgent = await rssMiB(agent!.pid);
  for (let i = 0; i < 4; i++) {
    const status = await upload(i % 2 === 1, 10_000, '/early-reset');
    assert.ok(status === 413 || status === 502, `upload ${i + 1}: ${status}`);
    await assertCalm(`after reset upload ${i + 1}`, startHub, startAgent);
  }
});

test('an upgraded connection the app resets while the client sends: the client sees it end, hub and agent stay calm', { timeout: 120_000 }, async () => {
  const startHub = await rssMiB(hub!.pid);
  const startAgent = await rssMiB(agent!.pid);
  for (let i = 0; i < 4; i++) {
    const result = await abruptUpgrade(10_000);
    assert.ok(result.upgraded, `upgrade ${i + 1} got its 101: ${JSON.stringify(result.head)}`);
    assert.ok(result.ended, `upgrade ${i + 1}: the client's connection ended once the app reset it (sent ${result.sentMiB} MiB)`);
    await assertCalm(`after upgrade ${i + 1}`, startHub, startAgent);
  }
});

test('a close-delimited answer the app ends cleanly reaches the client whole', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const r = await closeDelimited('/whole', 10_000);
    assert.deepEqual(r, { status: 200, bytes: 512 * 1024, how: 'whole' }, `answer ${i + 1}`);
  }
});

test('a close-delimited answer the app resets midway reaches the client as cut, never as a whole 200', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 3; i++) {
    const r = await closeDelimited('/cut', 10_000);
    assert.equal(r.status, 200, `answer ${i + 1}: the head came (${JSON.stringify(r)})`);
    assert.equal(r.how, 'cut', `answer ${i + 1}: the client saw the reset as a cut (${JSON.stringify(r)})`);
    assert.ok(r.bytes <= 256 * 1024, `answer ${i + 1}: no more than the app sent (${r.bytes})`);
  }
  const startHub = await rssMiB(hub!.pid);
  const startAgent = await rssMiB(agent!.pid);
  await assertCalm('after the cut answers', startHub, startAgent);
});
