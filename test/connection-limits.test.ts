/** Connection limits on the hub's listener, with real TLS sockets on 127.0.0.1: a handshake, a
 * request head and a stalled request body each have a deadline; a body that keeps flowing, a
 * long answer (engine events through a real agent) and the agent's own link are never cut;
 * each client address holds a bounded number of connections, and an agent over its address's
 * link budget is told to come back later. Timeouts are shortened to 1 s. */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { upgradeToGateway } from '../src/agent/gateway-upgrade.ts';
import { dialHub } from '../src/agent/hub-dialer.ts';
import { hubConfigFrom, type HubConfig } from '../src/hub/config.ts';
import type { DockfleetError } from '../src/protocol/errors.ts';
import { runHub, type RunningHub } from '../src/hub/run-hub.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { startTestAgent, NO_ENGINE, type TestAgent } from './support/agent-fixture.ts';
import { waitFor, removeHubData } from './support/hub-fixture.ts';

interface Hub {
  running: RunningHub;
  dir: string;
  token: string;
  port: number;
}

const SHORT = { handshakeMs: 1_000, headMs: 1_000, bodyStallMs: 1_000 };

async function startHub(listener: Partial<HubConfig['listener']>): Promise<Hub> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-limits-'));
  const base = hubConfigFrom({ data: dir, listen: '127.0.0.1:0' });
  const running = await runHub({ ...base, listener: { ...base.listener, ...listener } }, silentLogger());
  const token = (await readFile(join(dir, 'admin.token'), 'utf8')).trim();
  return { running, dir, token, port: Number(new URL(running.url).port) };
}

async function stopHub(hub: Hub | undefined): Promise<void> {
  if (!hub) return;
  await hub.running.close();
  await removeHubData(hub.dir);
}

function connectTls(hub: Hub): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: hub.port, ca: hub.running.caPem, servername: 'localhost' }, () => resolve(socket));
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
    socket.resume(); // a socket only reports its end once what came before it was read
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tokenRequestHead(hub: Hub, length: number): string {
  return `POST /api/v1/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${hub.token}\r\n` + `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
}

let engines: TestEngine[];
let fast: Hub;
let agent: TestAgent;

before(async () => {
  engines = await startEngines(1, { prefix: 'limits' });
  fast = await startHub(SHORT);
  const code = (await fetchJson(fast, 'POST', '/api/v1/enrollments', { name: 'limits-0' })).code as string;
  agent = await startTestAgent({ hubUrl: fast.running.url, code, docker: engines[0]!.dockerHost });
  await agent.waitConnected();
});

after(async () => {
  await agent?.stop();
  await stopHub(fast);
  if (engines) await stopEngines(engines);
});

/** One request on its own TLS connection; the answer's status and parsed JSON. */
async function fetchJson(hub: Hub, method: string, path: string, body?: unknown): Promise<any> {
  const socket = await connectTls(hub);
  const payload = body === undefined ? '' : JSON.stringify(body);
  const text = collect(socket);
  socket.write(
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${hub.token}\r\nConnection: close\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
  );
  await closedWithin(socket, 10_000);
  const [, bodyText = ''] = text().split('\r\n\r\n');
  return JSON.parse(bodyText);
}

test('a connection that never starts TLS is closed at the handshake deadline', async () => {
  const socket = net.connect({ host: '127.0.0.1', port: fast.port });
  await new Promise((r) => socket.once('connect', r));
  const ms = await closedWithin(socket, 4_000);
  assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
});

test('a TLS connection that never sends a request head is closed', async () => {
  const socket = await connectTls(fast);
  const ms = await closedWithin(socket, 4_000);
  assert.ok(ms >= 800, `closed after ${ms} ms, before the deadline`);
});

test('an idle keep-alive connection is closed after its answer', async () => {
  const socket = await connectTls(fast);
  const text = collect(socket);
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => text().includes('\r\n\r\n'), 2_000, 'the /healthz answer');
  assert.match(text(), /^HTTP\/1\.1 200 /);
  await closedWithin(socket, 4_000);
});

test('a request body that stops arriving is cut with 408', async () => {
  const socket = await connectTls(fast);
  const text = collect(socket);
  socket.write(tokenRequestHead(fast, 40));
  socket.write('{"name":');
  await closedWithin(socket, 5_000);
  assert.match(text(), /^HTTP\/1\.1 408 /);
  assert.match(text(), /"code":"body_stalled"/);
});

test('a request body that trickles steadily is not cut', async () => {
  const socket = await connectTls(fast);
  const text = collect(socket);
  const body = '{"name":"t1"}'; // 13 bytes, one every 500 ms: 6.5 s, well past the 1 s stall deadline
  socket.write(tokenRequestHead(fast, body.length));
  for (const ch of body) {
    if (socket.destroyed) break;
    socket.write(ch);
    await sleep(500);
  }
  await waitFor(() => text().includes('\r\n\r\n') || socket.destroyed, 5_000, 'an answer');
  assert.match(text(), /^HTTP\/1\.1 201 /);
  socket.destroy();
});

test('a long answer (engine events) and the agent link outlive every deadline', async () => {
  const socket = await connectTls(fast);
  const text = collect(socket);
  socket.write(`GET /docker/nodes/limits-0/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${fast.token}\r\n\r\n`);
  await waitFor(() => text().includes('\r\n\r\n'), 5_000, 'the events answer head');
  assert.match(text(), /^HTTP\/1\.1 200 /);
  await sleep(3_500);
  assert.equal(socket.destroyed, false, 'the events stream was cut');
  await runContainer(engines[0]!, { cmd: ['true'], start: true });
  await waitFor(() => text().includes('"Action":"start"'), 5_000, 'a start event on the held stream');
  assert.equal(agent.connects, 1, 'the agent link was cut and reconnected');
  socket.destroy();
});

test('each client address holds at most N connections; agents count apart', async () => {
  let capped: Hub | undefined;
  let capAgent: TestAgent | undefined;
  const sockets: tls.TLSSocket[] = [];
  try {
    capped = await startHub({ perAddress: 4, agentLinksPerAddress: 1 });
    const code = (await fetchJson(capped, 'POST', '/api/v1/enrollments', { name: 'limits-cap' })).code as string;
    capAgent = await startTestAgent({ hubUrl: capped.running.url, code, docker: NO_ENGINE });
    await capAgent.waitConnected();
    for (let i = 0; i < 4; i++) sockets.push(await connectTls(capped));
    await assert.rejects(connectTls(capped), 'a fifth connection from 127.0.0.1 was accepted');
    sockets.shift()!.destroy();
    await sleep(100);
    sockets.push(await connectTls(capped));
    assert.equal(capAgent.connects, 1);
    // A second agent link from this address is over its budget of one: the refusal says "not
    // now" (rate_limited, retry in 30 s), which an agent waits out instead of giving up for good.
    for (const s of sockets.splice(0)) s.destroy();
    await sleep(100);
    const { socket } = await dialHub(new URL(capped.running.url), { caPem: capped.running.caPem });
    const refused = await upgradeToGateway(socket, new URL(capped.running.url), 5_000).then(
      () => null,
      (err: unknown) => err as DockfleetError,
    );
    assert.equal(refused?.code, 'rate_limited', `refusal: ${refused?.code} ${refused?.message}`);
    assert.equal(refused?.cause, 30_000);
    assert.match(refused.message, /too many agent links/);
  } finally {
    for (const s of sockets) s.destroy();
    await capAgent?.stop();
    await stopHub(capped);
  }
});
