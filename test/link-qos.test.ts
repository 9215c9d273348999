/**
 * Interactive calls first (src/hub/gateway/link-qos.ts) and the relay that obeys it
 * (src/lib/relay.ts), with real timers and real streams. The end-to-end effect through a hub,
 * an agent and a dockerd is in docker-gateway.test.ts; its size is in bench/ (many).
 */
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { test } from 'node:test';
import { INTERACTIVE_FOR_MS, LinkQos, MAX_YIELD_MS, MIN_RUN_MS } from '../src/hub/gateway/link-qos.ts';
import { relay } from '../src/lib/relay.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('bulk yields while an interactive call is in flight, and only then', () => {
  const qos = new LinkQos();
  qos.begin()(); // no bulk waiting: not a yield
  assert.equal(qos.yields, 0);
  let opened = 0;
  qos.onOpen(() => opened++);
  assert.equal(qos.closed(), false);
  const a = qos.begin();
  const b = qos.begin();
  assert.equal(qos.closed(), true);
  assert.equal(qos.interactive, 2);
  a();
  a(); // ending twice counts once
  assert.equal(qos.closed(), true, 'one call still in flight');
  b();
  assert.equal(qos.closed(), false);
  assert.equal(qos.interactive, 0);
  assert.equal(opened, 1);
  assert.equal(qos.yields, 1);
  qos.close();
});

test('under a steady stream of calls bulk still runs: it yields at most MAX_YIELD_MS, then runs MIN_RUN_MS', async () => {
  const qos = new LinkQos();
  qos.onOpen(() => {});
  const end = qos.begin();
  try {
    assert.equal(qos.closed(), true);
    await sleep(MAX_YIELD_MS + 10);
    assert.equal(qos.closed(), false, 'bulk gets its turn although the call is still open');
    await sleep(MIN_RUN_MS + 20);
    assert.equal(qos.closed(), true, 'and yields again after its run');
    assert.equal(qos.yields, 2);
  } finally {
    end();
    qos.close();
  }
});

test('a call open longer than INTERACTIVE_FOR_MS (logs -f, events) stops holding bulk back', async () => {
  const qos = new LinkQos();
  qos.begin(); // never ended, like a follow stream
  await sleep(INTERACTIVE_FOR_MS + 50);
  assert.equal(qos.interactive, 0);
  assert.equal(qos.closed(), false);
  qos.close();
});

test('a gated relay stops reading while the gate is closed although its writer has room, and goes on when it opens', async () => {
  const qos = new LinkQos();
  const source = new PassThrough();
  let written = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      cb();
    },
  });
  const copy = relay(source, sink);
  const chunk = Buffer.alloc(64 * 1024, 7);
  source.write(chunk);
  await sleep(10);
  assert.equal(written, chunk.length);

  copy.gate(qos);
  const end = qos.begin();
  source.write(chunk); // this one passes and the reader pauses behind it
  source.write(chunk);
  source.write(chunk);
  await sleep(20);
  assert.equal(written, 2 * chunk.length, 'no more read while the gate is closed');
  assert.ok(source.isPaused());

  end();
  await sleep(20);
  assert.equal(written, 4 * chunk.length, 'all of it once the gate opened');
  source.end();
  await new Promise((resolve) => sink.once('finish', resolve));
  qos.close();
});

test('a relay without a gate behaves as before: whole, in order', async () => {
  const parts = Array.from({ length: 50 }, (_, i) => Buffer.alloc(10_000, i));
  const got: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk);
      setImmediate(cb);
    },
    highWaterMark: 1,
  });
  relay(Readable.from(parts), sink, { budgetBytes: 64 * 1024 });
  await new Promise((resolve) => sink.once('finish', resolve));
  assert.deepEqual(Buffer.concat(got), Buffer.concat(parts));
});
