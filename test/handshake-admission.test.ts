/** Handshake admission on a real HTTPS listener (the hub's PKI, the hub's connection guard, real
 * TLS clients on loopback): at most N handshakes run at once and a crowd of them all finishes;
 * silent connections take no slot; a client that stalls mid-handshake holds one only briefly;
 * a crowd behind one address does not starve another; a full queue and a stale wait close the
 * connection before any TLS work. Second addresses are 127.0.0.2 and 127.0.0.3 (loopback). */
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ConnectionGuard } from '../src/hub/listener/connection-guard.ts';
import { LISTENER_DEFAULTS, type ListenerLimits } from '../src/hub/listener/listener-limits.ts';
import { loadOrCreateHubPki, type HubPki } from '../src/hub/pki.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import { silentLogger } from '../src/lib/logger.ts';

let work: string;
let pki: HubPki;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-admission-'));
  pki = await loadOrCreateHubPki(work, { hosts: ['127.0.0.1', 'localhost'], secrets: new SecretBox(Buffer.alloc(32, 7)) });
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Listener {
  guard: ConnectionGuard;
  port: number;
  close(): Promise<void>;
}

async function listen(limits: Partial<ListenerLimits>): Promise<Listener> {
  const server = https.createServer({ cert: pki.serverCertPem, key: pki.serverKeyPem, handshakeTimeout: 60_000 }, (_req, res) => res.end('ok'));
  const guard = new ConnectionGuard({
    limits: { ...LISTENER_DEFAULTS, ...limits },
    log: silentLogger(),
    stallAnswer: () => '',
    agentLinksFullAnswer: '',
    isAgentUpgrade: () => false,
  });
  guard.attach(server);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    guard,
    port,
    close: async () => {
      guard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A real TLS client; resolves with the ms its handshake took from connect. */
function handshake(port: number, localAddress = '127.0.0.1'): Promise<{ ms: number; socket: tls.TLSSocket }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress });
    const socket = tls.connect({ socket: raw, ca: pki.caCertPem, servername: 'localhost' }, () => resolve({ ms: Date.now() - t0, socket }));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the TLS handshake finished')));
  });
}

/** A TCP connection that sends the start of a TLS record and then nothing: it holds a slot. */
function staller(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => {
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
      resolve(socket);
    });
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

/** A TCP connection that sends nothing at all. */
function silent(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', () => {});
    socket.once('error', reject);
  });
}

function closedSoon(socket: net.Socket, withinMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => reject(new Error(`still open after ${withinMs} ms`)), withinMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('the slots bound the handshakes that run at once, and a crowd behind them all finishes', async () => {
  const l = await listen({ handshakeSlots: 4 });
  const held: net.Socket[] = [];
  try {
    // Six clients that stall mid-handshake: four run, two wait.
    for (let i = 0; i < 6; i++) held.push(await staller(l.port));
    await sleep(100);
    assert.deepEqual([l.guard.admission.running, l.guard.admission.queued], [4, 2]);
    // A crowd of real handshakes waits for slots (the stallers give theirs up after 2 s) and
    // then all finish.
    const done = await Promise.all(Array.from({ length: 60 }, () => handshake(l.port)));
    for (const { socket } of done) socket.destroy();
    const counts = l.guard.admission;
    assert.equal(counts.peak, 4, `peak ${counts.peak}`);
    assert.equal(counts.refused + counts.expired, 0);
    assert.ok(Math.max(...done.map((d) => d.ms)) >= 1_500, 'the crowd did not wait for a slot');
  } finally {
    for (const s of held) s.destroy();
    await l.close();
  }
});

test('silent connections take no slot; a client that stalls mid-handshake holds one only for a while', async () => {
  const l = await listen({ handshakeSlots: 2, handshakeMs: 6_000 });
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 50; i++) held.push(await silent(l.port));
    const first = await handshake(l.port);
    first.socket.destroy();
    assert.ok(first.ms < 1_000, `a handshake behind 50 silent connections took ${first.ms} ms`);
    await sleep(100); // the client is done before the server has read its last flight
    assert.equal(l.guard.admission.running, 0);
    // Two stallers take both slots; the next client waits for one to time out of its slot
    // (min(2 s, half the 6 s deadline) = 2 s; it may wait 4.2 s), not for the stallers' whole deadline.
    for (let i = 0; i < 2; i++) held.push(await staller(l.port));
    await sleep(100);
    assert.equal(l.guard.admission.running, 2);
    const second = await handshake(l.port);
    second.socket.destroy();
    assert.ok(second.ms >= 1_500 && second.ms < 3_500, `a handshake behind two stalled ones took ${second.ms} ms`);
  } finally {
    for (const s of held) s.destroy();
    await l.close();
  }
});

test('a crowd of stalled connections from one address does not starve another address', async () => {
  const l = await listen({ handshakeSlots: 2, handshakeMs: 6_000 });
  const held: net.Socket[] = [];
  try {
    // 2 run and 10 wait, all from 127.0.0.2: in plain arrival order a newcomer would wait for
    // six rounds of 2 s.
    for (let i = 0; i < 12; i++) held.push(await staller(l.port, '127.0.0.2'));
    await sleep(100);
    assert.equal(l.guard.admission.queued, 10);
    const other = await handshake(l.port, '127.0.0.3');
    other.socket.destroy();
    assert.ok(other.ms < 3_500, `a handshake from another address took ${other.ms} ms behind one address's crowd`);
  } finally {
    for (const s of held) s.destroy();
    await l.close();
  }
});

test('a full queue closes the newcomer at once; a connection that waited too long is closed at its turn', async () => {
  const l = await listen({ handshakeSlots: 1, handshakeQueue: 2, handshakeMs: 5_000 });
  const held: net.Socket[] = [];
  try {
    // One runs (its slot held 2 s), two wait (at most 3.5 s, 70% of the 5 s deadline).
    for (let i = 0; i < 3; i++) held.push(await staller(l.port));
    await sleep(100);
    assert.deepEqual([l.guard.admission.running, l.guard.admission.queued], [1, 2]);
    const fourth = await staller(l.port);
    await closedSoon(fourth, 500);
    assert.equal(l.guard.admission.refused, 1);
    // The first waiter's turn comes after 2 s (under the 3.5 s wait limit: it runs); the
    // second's after 4 s, past it: it is closed without starting TLS, before its 5 s deadline.
    await closedSoon(held[2]!, 4_400);
    assert.ok(l.guard.admission.expired >= 1, `expired ${l.guard.admission.expired}`);
    // And the listener still serves.
    for (const s of held) s.destroy();
    await sleep(50);
    const later = await handshake(l.port);
    later.socket.destroy();
  } finally {
    for (const s of held) s.destroy();
    await l.close();
  }
});
