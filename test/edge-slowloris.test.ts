/** The edge port under slow and greedy clients, with real TLS on 127.0.0.1 and deadlines
 * shortened to 1 s: HTTP/1.1 and HTTP/2 alike, a connection that never starts TLS, a request
 * head dribbled line by line (HTTP/1.1) or frame by frame (HTTP/2 CONTINUATION), an HTTP/2
 * session that sends no HEADERS, a stalled request body (either protocol) and an idle
 * connection are each cut within the deadline, while the edge keeps answering other clients; an
 * HTTP/2 client that floods requests and never reads is ended with hub memory bounded;
 * browsers get HTTP/2 by ALPN; the per-address cap holds HTTP/2 connections too. No route is
 * needed: the edge's own 404 page for an unknown host is the answer being served. */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { hubConfigFrom, type HubConfig } from '../src/hub/config.ts';
import { runHub, type RunningHub } from '../src/hub/run-hub.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { EDGE_H2_MAX_STREAMS } from '../src/hub/edge/edge-h2-limits.ts';
import { removeHubData } from './support/hub-fixture.ts';

interface Edge {
  running: RunningHub;
  dir: string;
  port: number;
}

const SHORT = { handshakeMs: 1_000, headMs: 1_000, bodyStallMs: 1_000 };

async function startEdge(listener: Partial<HubConfig['listener']>): Promise<Edge> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-edge-limits-'));
  const base = hubConfigFrom({ data: dir, listen: '127.0.0.1:0', 'edge-listen': '127.0.0.1:0' });
  const running = await runHub({ ...base, listener: { ...base.listener, ...listener } }, silentLogger());
  assert.ok(running.edgePort);
  return { running, dir, port: running.edgePort };
}

async function stopEdge(edge: Edge | undefined): Promise<void> {
  if (!edge) return;
  await edge.running.close();
  await removeHubData(edge.dir);
}

let edge: Edge;
before(async () => {
  edge = await startEdge(SHORT);
});
after(async () => {
  await stopEdge(edge);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The hub runs in this process: live memory (after a full collection) is what it holds.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function liveBytes(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function connectTls(port: number, alpn: string[]): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'nowhere.test', ALPNProtocols: alpn, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the TLS handshake finished')));
  });
}

/** Resolves with the ms until `socket` closes; rejects if it is still open after `withinMs`. */
function closedWithin(socket: net.Socket, withinMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    socket.on('error', () => {});
    socket.resume();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${withinMs} ms`));
    }, withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

function collect(socket: net.Socket): () => string {
  let text = '';
  socket.on('data', (c: Buffer) => void (text += c.toString('latin1')));
  return () => text;
}

/** A whole HTTP/2 GET on a fresh session: status, body, the ALPN the session got. */
async function h2Get(port: number, host = 'nowhere.test'): Promise<{ status: number; body: string; alpn: string | false | undefined }> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername: host, rejectUnauthorized: false });
  try {
    return await new Promise((resolve, reject) => {
      session.once('error', reject);
      const req = session.request({ ':path': '/', ':authority': host });
      let body = '';
      let status = 0;
      req.setEncoding('utf8');
      req.on('response', (h) => {
        status = Number(h[':status']);
      });
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => resolve({ status, body, alpn: session.alpnProtocol }));
      req.on('error', reject);
    });
  } finally {
    session.destroy();
  }
}

/** A whole HTTP/1.1 GET on its own connection; the raw answer. */
async function h1Get(port: number): Promise<string> {
  const socket = await connectTls(port, ['http/1.1']);
  const text = collect(socket);
  socket.write('GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n');
  await closedWithin(socket, 5_000);
  return text();
}

test('an HTTP/2 client gets HTTP/2 by ALPN and the edge answers it (the unknown-host page)', async () => {
  const res = await h2Get(edge.port);
  assert.equal(res.alpn, 'h2');
  assert.equal(res.status, 404);
  assert.match(res.body, /No route for this host/);
  const h1 = await h1Get(edge.port);
  assert.match(h1, /^HTTP\/1\.1 404 /);
});

test('a connection that never starts TLS is closed at the handshake deadline', async () => {
  const socket = net.connect({ host: '127.0.0.1', port: edge.port });
  await new Promise((r) => socket.once('connect', r));
  const ms = await closedWithin(socket, 4_000);
  assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
});

test('HTTP/1.1: a request head dribbled a line at a time is cut, and others are served meanwhile', async () => {
  const socket = await connectTls(edge.port, ['http/1.1']);
  assert.equal(socket.alpnProtocol, 'http/1.1');
  const text = collect(socket);
  socket.write('GET / HTTP/1.1\r\nHost: nowhere.test\r\n');
  const dribble = setInterval(() => {
    if (!socket.destroyed) socket.write(`X-Slow-${Date.now()}: 1\r\n`);
  }, 150);
  try {
    const served = h2Get(edge.port);
    const ms = await closedWithin(socket, 4_000);
    assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
    assert.match(text(), /^HTTP\/1\.1 408 |^$/);
    assert.equal((await served).status, 404);
  } finally {
    clearInterval(dribble);
  }
});

test('HTTP/1.1: a request body that stops arriving is cut', async () => {
  const socket = await connectTls(edge.port, ['http/1.1']);
  socket.write('POST /upload HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: 100\r\n\r\n0123456789');
  const ms = await closedWithin(socket, 5_000);
  assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
});

test('HTTP/1.1: an idle keep-alive connection is closed after its answer', async () => {
  const socket = await connectTls(edge.port, ['http/1.1']);
  const text = collect(socket);
  socket.write('GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n');
  await sleep(300);
  assert.match(text(), /^HTTP\/1\.1 404 /);
  await closedWithin(socket, 4_000);
});

test('HTTP/1.1: an oversized head gets its 431, even while the client is still sending', async () => {
  for (const size of [64 * 1024, 1024 * 1024]) {
    const socket = await connectTls(edge.port, ['http/1.1']);
    const text = collect(socket);
    socket.write(`GET / HTTP/1.1\r\nHost: nowhere.test\r\nX-Big: ${'a'.repeat(size)}\r\n\r\n`);
    const ms = await closedWithin(socket, 4_000);
    assert.match(text(), /^HTTP\/1\.1 431 /, `a ${size / 1024} KiB head: "${text().slice(0, 40)}" after ${ms} ms`);
  }
});

test('HTTP/2: a session that sends no HEADERS is closed at the head deadline', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.port}`, { servername: 'nowhere.test', rejectUnauthorized: false });
  session.on('error', () => {});
  await new Promise((r) => session.once('connect', r));
  const t0 = Date.now();
  // PINGs are not requests: they must not keep the session alive.
  const pinger = setInterval(() => {
    if (!session.destroyed) session.ping(() => {});
  }, 200);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the idle HTTP/2 session is still open after 4 s')), 4_000);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    clearInterval(pinger);
    session.destroy();
  }
  const ms = Date.now() - t0;
  assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
});

test('HTTP/2: a header block dribbled a byte at a time is cut, and others are served meanwhile', async () => {
  const socket = await connectTls(edge.port, ['h2']);
  assert.equal(socket.alpnProtocol, 'h2');
  socket.write(Buffer.concat([H2_PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))])); // SETTINGS, empty
  // One HEADERS frame (END_STREAM, END_HEADERS): :method GET, :scheme https, :path /, then a
  // :authority and a long header; its bytes come one every 100 ms, so the block never completes.
  // (A dribble of many CONTINUATION frames is stopped by nghttp2 itself after a few.)
  const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x84]), literal(':authority', 'nowhere.test'), literal('x-slow', 'a'.repeat(100))]);
  const headers = frame(0x1, 0x5, 1, block);
  let sent = 0;
  const dribble = setInterval(() => {
    if (!socket.destroyed && sent < headers.length) socket.write(headers.subarray(sent, ++sent));
  }, 100);
  try {
    const served = h2Get(edge.port);
    const ms = await closedWithin(socket, 4_000);
    assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
    assert.ok(sent < headers.length, 'the whole head arrived before the cut');
    assert.equal((await served).status, 404);
  } finally {
    clearInterval(dribble);
  }
});

test('HTTP/2: a stalled request body closes its stream, and the session goes on serving', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.port}`, { servername: 'nowhere.test', rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    const stalled = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'nowhere.test', 'content-length': '100' });
    stalled.on('error', () => {});
    stalled.resume();
    stalled.write('0123456789');
    const t0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the stalled stream is still open after 4 s')), 4_000);
      stalled.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const ms = Date.now() - t0;
    assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
    assert.equal(session.destroyed, false, 'the stall took the whole session down');
    const next = session.request({ ':path': '/', ':authority': 'nowhere.test' });
    const status = await new Promise<number>((resolve, reject) => {
      next.once('response', (h) => resolve(Number(h[':status'])));
      next.once('error', reject);
    });
    next.resume();
    assert.equal(status, 404);
  } finally {
    session.destroy();
  }
});

test('HTTP/2: a request body that trickles steadily is not cut', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.port}`, { servername: 'nowhere.test', rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    const slow = session.request({ ':method': 'POST', ':path': '/upload', ':authority': 'nowhere.test' });
    slow.on('error', () => {});
    slow.resume();
    for (let i = 0; i < 8; i++) {
      // one byte every 400 ms: 3.2 s, well past the 1 s stall deadline
      assert.equal(slow.closed, false, `cut after ${i} bytes`);
      slow.write('x');
      await sleep(400);
    }
    assert.equal(slow.closed, false);
    slow.end();
    await new Promise((resolve) => slow.once('close', resolve));
    assert.equal(slow.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  } finally {
    session.destroy();
  }
});

test('HTTP/2: the server announces bounded streams and header size', async () => {
  const session = http2.connect(`https://127.0.0.1:${edge.port}`, { servername: 'nowhere.test', rejectUnauthorized: false });
  session.on('error', () => {});
  try {
    const settings = await new Promise<http2.Settings>((resolve) => session.once('remoteSettings', resolve));
    assert.equal(settings.maxConcurrentStreams, EDGE_H2_MAX_STREAMS);
    assert.ok(settings.maxHeaderListSize !== undefined && settings.maxHeaderListSize <= 32 * 1024, `maxHeaderListSize ${settings.maxHeaderListSize}`);
    // A head over the bound is refused on its own stream, never taken in.
    const big = session.request({ ':path': '/', ':authority': 'nowhere.test', 'x-big': 'a'.repeat(40 * 1024) });
    const outcome = await new Promise<string>((resolve) => {
      big.once('response', (h) => resolve(`status ${h[':status']}`));
      big.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code}`));
      big.once('close', () => resolve(`closed ${big.rstCode}`));
    });
    assert.doesNotMatch(outcome, /^status 404/, `the oversized head was served: ${outcome}`);
  } finally {
    session.destroy();
  }
});

test('HTTP/2: a client that sends requests and never reads is ended, and hub memory stays bounded', async () => {
  const base = liveBytes();
  const socket = await connectTls(edge.port, ['h2']);
  socket.pause(); // never reads a byte of the answers
  socket.on('error', () => {});
  // Windows as large as HTTP/2 allows, so only the edge's own bounds can hold answers back.
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0);
  settings.writeUInt32BE(2 ** 31 - 1, 2);
  const windowUpdate = Buffer.alloc(4);
  windowUpdate.writeUInt32BE(2 ** 31 - 1 - 65_535);
  socket.write(Buffer.concat([H2_PREFACE, frame(0x4, 0, 0, settings), frame(0x8, 0, 0, windowUpdate)]));
  const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x84]), literal(':authority', 'nowhere.test'), literal('x-pad', 'p'.repeat(100))]);
  let id = 1;
  let peak = 0;
  const t0 = Date.now();
  while (!socket.destroyed && id < 400_000 && Date.now() - t0 < 20_000) {
    const batch: Buffer[] = [];
    for (let i = 0; i < 2_000; i++, id += 2) batch.push(frame(0x1, 0x5, id, block));
    if (!socket.write(Buffer.concat(batch))) await Promise.race([new Promise((r) => socket.once('drain', r)), sleep(500)]);
    await sleep(10);
    peak = Math.max(peak, liveBytes() - base);
  }
  assert.equal(socket.destroyed, true, `the edge still holds the session after ${(id - 1) / 2} requests it never answered to a reader`);
  assert.ok(peak < 16 * 1024 * 1024, `hub memory grew by ${Math.round(peak / 1024 / 1024)} MB`);
  assert.equal((await h2Get(edge.port)).status, 404, 'the edge serves others');
});

test('the per-address cap holds HTTP/2 connections too', async () => {
  let capped: Edge | undefined;
  const sessions: http2.ClientHttp2Session[] = [];
  try {
    capped = await startEdge({ ...SHORT, headMs: 10_000, perAddress: 4 });
    const open = (): Promise<http2.ClientHttp2Session> =>
      new Promise((resolve, reject) => {
        const s = http2.connect(`https://127.0.0.1:${capped!.port}`, { servername: 'nowhere.test', rejectUnauthorized: false });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
        s.once('close', () => reject(new Error('closed before connecting')));
      });
    for (let i = 0; i < 4; i++) sessions.push(await open());
    await assert.rejects(open(), 'a fifth connection from 127.0.0.1 was accepted');
    sessions.shift()!.destroy();
    await sleep(100);
    sessions.push(await open());
  } finally {
    for (const s of sessions) s.destroy();
    await stopEdge(capped);
  }
});

// Raw HTTP/2 frames, for a client that misbehaves in ways Node's own client will not.
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK literal header field without indexing, new name (RFC 7541 6.2.2), short strings only. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}
