/** The gateway's bytes below HTTP/2, over real sockets: the WebSocket frame header each side
 * starts with, the handshake lines, and the hand-over of whatever follows them to HTTP/2. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { DockfleetError } from '../src/protocol/errors.ts';
import { AGENT_STREAM_START, HUB_STREAM_START, HandshakeStream, websocketAccept } from '../src/protocol/gateway-stream.ts';
import { MAX_HANDSHAKE_FRAME } from '../src/protocol/handshake.ts';

let server: net.Server;
const waiting: Array<(s: net.Socket) => void> = [];

before(async () => {
  server = net.createServer((s) => waiting.shift()?.(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});
after(() => server.close());

/** A connected pair: `near` is read through a HandshakeStream, `far` writes raw bytes. */
async function pair(): Promise<{ near: net.Socket; far: net.Socket }> {
  const far = new Promise<net.Socket>((resolve) => waiting.push(resolve));
  const near = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => near.once('connect', () => resolve()));
  return { near, far: await far };
}

const closed = (): DockfleetError => new DockfleetError('hub_unreachable', 'closed');
const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

test('the frame headers are one FIN binary frame of 2^63 − 1 bytes; the agent masks with a zero key', () => {
  for (const [start, masked] of [
    [HUB_STREAM_START, false],
    [AGENT_STREAM_START, true],
  ] as const) {
    assert.equal(start[0], 0x82, 'FIN + binary opcode');
    assert.equal((start[1]! & 0x80) !== 0, masked);
    assert.equal(start[1]! & 0x7f, 127, '64-bit length follows');
    assert.equal(start.readBigUInt64BE(2), 2n ** 63n - 1n);
    assert.equal(start.length, masked ? 14 : 10);
    if (masked) assert.deepEqual([...start.subarray(10)], [0, 0, 0, 0]);
  }
});

test('Sec-WebSocket-Accept is computed as RFC 6455 shows', () => {
  assert.equal(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('lines arrive in order however the bytes are cut, and what follows them is handed on intact', async () => {
  const { near, far } = await pair();
  const hs = new HandshakeStream(near, HUB_STREAM_START);
  const http2Bytes = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00');
  const wire = Buffer.concat([HUB_STREAM_START, Buffer.from('{"t":"one"}\n{"t":"two"}\n{"t":"three"}\n'), http2Bytes]);
  // Byte by byte through the frame header and the first line, then the rest in one piece.
  for (let i = 0; i < HUB_STREAM_START.length + 12; i++) {
    far.write(wire.subarray(i, i + 1));
    await tick();
  }
  far.write(wire.subarray(HUB_STREAM_START.length + 12));
  assert.equal(await hs.next(2_000, closed), '{"t":"one"}');
  assert.equal(await hs.next(2_000, closed), '{"t":"two"}');
  assert.equal(await hs.next(2_000, closed), '{"t":"three"}');
  await tick();
  const socket = hs.release();
  far.end(Buffer.from('more'));
  const rest: Buffer[] = [];
  socket.on('data', (c: Buffer) => rest.push(c));
  socket.resume();
  await new Promise<void>((resolve) => socket.once('end', () => resolve()));
  assert.deepEqual(Buffer.concat(rest), Buffer.concat([http2Bytes, Buffer.from('more')]));
  near.destroy();
});

test('a stream that starts with anything else is a protocol error, found at the first wrong byte', async () => {
  const { near, far } = await pair();
  const hs = new HandshakeStream(near, AGENT_STREAM_START);
  far.write(Buffer.from([0x82, 0x85]));
  await assert.rejects(hs.next(2_000, closed), (e: unknown) => e instanceof DockfleetError && e.code === 'protocol_error');
  near.destroy();
  far.destroy();
});

test('a line over the bound is refused without waiting for its end', async () => {
  const { near, far } = await pair();
  const hs = new HandshakeStream(near, HUB_STREAM_START);
  far.write(Buffer.concat([HUB_STREAM_START, Buffer.alloc(MAX_HANDSHAKE_FRAME + 10, 0x61)]));
  await assert.rejects(hs.next(2_000, closed), (e: unknown) => e instanceof DockfleetError && e.code === 'payload_too_large');
  near.destroy();
  far.destroy();
});

test('a peer that hangs up, or stays silent, ends the wait with a clear error', async () => {
  const a = await pair();
  const hangUp = new HandshakeStream(a.near, HUB_STREAM_START);
  a.far.end(Buffer.concat([HUB_STREAM_START, Buffer.from('{"t":"half')]));
  await assert.rejects(hangUp.next(2_000, closed), (e: unknown) => e instanceof DockfleetError && e.code === 'hub_unreachable');
  a.near.destroy();

  const b = await pair();
  const silent = new HandshakeStream(b.near, HUB_STREAM_START);
  const started = Date.now();
  await assert.rejects(silent.next(200, closed), (e: unknown) => e instanceof DockfleetError && e.code === 'handshake_timeout');
  assert.ok(Date.now() - started >= 190);
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 50);
  await assert.rejects(silent.next(null, closed, stop.signal), (e: unknown) => e instanceof DockfleetError && e.code === 'handshake_timeout');
  b.near.destroy();
  b.far.destroy();
});
