/**
 * Per-stream receive windows sized to the link's round trip (src/lib/h2-channel.ts), over a real
 * HTTP/2 session on loopback: the window the peer is told about follows the smallest round trip,
 * never a larger one, and data beyond it waits for the reader.
 */
import assert from 'node:assert/strict';
import http2, { type ClientHttp2Session, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { H2_SETTINGS, STREAM_WINDOW_FLOOR, STREAM_WINDOW_INITIAL, STREAM_WINDOW_MAX, WindowSizer, streamWindowFor } from '../src/lib/h2-channel.ts';

test('a window holds the floor plus one round trip at 128 MB/s, capped', () => {
  assert.equal(streamWindowFor(0), STREAM_WINDOW_FLOOR);
  assert.equal(streamWindowFor(-3), STREAM_WINDOW_FLOOR);
  assert.equal(streamWindowFor(50), STREAM_WINDOW_FLOOR + 50 * 128_000);
  assert.ok(streamWindowFor(50) / 50_000 >= 128, 'a 50 ms link can carry 128 MB/s per stream');
  assert.equal(streamWindowFor(10_000), STREAM_WINDOW_MAX);
});

async function sessionPair(): Promise<{ client: ClientHttp2Session; server: ServerHttp2Session; close: () => Promise<void> }> {
  const srv = http2.createServer({ settings: H2_SETTINGS });
  const serverSession = new Promise<ServerHttp2Session>((resolve) => srv.once('session', resolve));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`, { settings: H2_SETTINGS });
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const server = await serverSession;
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

/** Resolves once the server has been told this window (SETTINGS arrive asynchronously). */
function told(server: ServerHttp2Session, window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (server.remoteSettings.initialWindowSize !== window) return;
      clearTimeout(timer);
      server.off('remoteSettings', check);
      resolve();
    };
    const timer = setTimeout(() => reject(new Error(`the peer was never told a ${window}-byte window (has ${server.remoteSettings.initialWindowSize})`)), 5_000);
    server.on('remoteSettings', check);
    check();
  });
}

test('the peer is told the window for the smallest round trip seen; larger ones change nothing', async () => {
  const { client, server, close } = await sessionPair();
  try {
    const resized: number[] = [];
    const sizer = new WindowSizer(client, (w) => resized.push(w));
    assert.equal(sizer.window, STREAM_WINDOW_INITIAL);

    sizer.sample(20);
    await told(server, streamWindowFor(20));

    sizer.sample(80);
    sizer.sample(19.9); // within an eighth of the current window: not worth a SETTINGS frame
    assert.deepEqual(resized, [streamWindowFor(20)]);

    sizer.sample(0.3);
    await told(server, streamWindowFor(0.3));
    assert.equal(sizer.minRttMs, 0.3);

    // A real probe on loopback measures well under 20 ms and keeps the window near the floor.
    await new Promise<void>((resolve) => client.ping((err) => (assert.ifError(err), resolve())));
    sizer.probe();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(sizer.minRttMs < 20, `loopback round trip ${sizer.minRttMs} ms`);
    assert.ok(sizer.window < STREAM_WINDOW_FLOOR + 20 * 128_000);
  } finally {
    await close();
  }
});

test('a stream sends no more than the resized window until the reader takes it', async () => {
  const { client, server, close } = await sessionPair();
  try {
    const sizer = new WindowSizer(client);
    sizer.sample(0);
    await told(server, STREAM_WINDOW_FLOOR);
    const payload = Buffer.alloc(4 * STREAM_WINDOW_FLOOR, 1);
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end(payload);
    });
    const req = client.request({ ':path': '/' });
    req.pause();
    await new Promise((resolve) => req.once('response', resolve));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Paused: what arrived is bounded by the window (plus what was already in JS buffers).
    assert.ok(req.readableLength <= STREAM_WINDOW_FLOOR, `buffered ${req.readableLength} bytes with a ${STREAM_WINDOW_FLOOR}-byte window`);
    let got = req.readableLength;
    req.on('data', (c: Buffer) => (got += c.length));
    const drained = new Promise((resolve) => req.once('end', resolve));
    got = 0;
    req.resume();
    await drained;
    assert.equal(got, payload.length, 'all of it arrives once read');
  } finally {
    await close();
  }
});
