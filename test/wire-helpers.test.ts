/** Pure pieces of the wire: NDJSON framing, backoff, enrollment codes, reconnect limits. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../src/lib/backoff.ts';
import { parseHostPort } from '../src/lib/host-port.ts';
import { LineTooLongError, NdjsonSplitter, parseJsonLine } from '../src/lib/ndjson.ts';
import { DockfleetError } from '../src/protocol/errors.ts';
import { hashSecret, mintCode, parseCode } from '../src/protocol/enrollment-code.ts';
import { authFrame, hubFrame, parseFrame } from '../src/protocol/handshake.ts';
import { inventoryMessage } from '../src/protocol/inventory.ts';
import { ReconnectLimiter } from '../src/hub/gateway/reconnect-limiter.ts';

test('ndjson splitter joins lines across chunks and skips blank lines', () => {
  const s = new NdjsonSplitter(100);
  assert.deepEqual(s.push(Buffer.from('{"a":1}\n{"b"')), ['{"a":1}']);
  assert.deepEqual(s.push(Buffer.from(':2}\n\n{"c":3}\n')), ['{"b":2}', '{"c":3}']);
  assert.deepEqual(s.push(Buffer.from('')), []);
});

test('ndjson splitter refuses a line over its bound instead of buffering it', () => {
  const s = new NdjsonSplitter(10);
  assert.throws(() => s.push(Buffer.from('x'.repeat(11))), LineTooLongError);
  const t = new NdjsonSplitter(10);
  t.push(Buffer.from('12345'));
  assert.throws(() => t.push(Buffer.from('678901\n')), LineTooLongError);
});

test('a JSON line that does not parse is reported, not thrown', () => {
  assert.deepEqual(parseJsonLine('{"ok":true}'), { ok: true, value: { ok: true } });
  assert.equal(parseJsonLine('{nope').ok, false);
});

test('backoff grows from about 100 ms to a 10 s cap, jittered, and resets', () => {
  const low = new Backoff({ random: () => 0 });
  const high = new Backoff({ random: () => 1 });
  const lows = Array.from({ length: 10 }, () => low.next());
  const highs = Array.from({ length: 10 }, () => high.next());
  assert.deepEqual(highs.slice(0, 4), [100, 200, 400, 800]);
  assert.deepEqual(lows.slice(0, 4), [50, 100, 200, 400]);
  assert.equal(highs.at(-1), 10_000);
  assert.equal(lows.at(-1), 5_000);
  high.reset();
  assert.equal(high.next(), 100);
});

test('enrollment codes carry the CA digest and a secret stored only as a hash', () => {
  const digest = 'ab'.repeat(32);
  const { code, secretHash } = mintCode('single', digest);
  const parsed = parseCode(code);
  assert.equal(parsed.kind, 'single');
  assert.equal(parsed.caDigest, digest);
  assert.equal(hashSecret(parsed.secret), secretHash);
  assert.ok(!secretHash.includes(parsed.secret));
  assert.equal(parseCode(mintCode('join', digest).code).kind, 'join');
  for (const bad of ['', 'DFE1-xyz', `DFX1-${digest}-${'0'.repeat(32)}`, `DFE1-${digest}-${'g'.repeat(32)}`]) {
    assert.throws(
      () => parseCode(bad),
      (e: unknown) => e instanceof DockfleetError && e.code === 'code_invalid',
    );
  }
});

test('handshake frames are validated: wrong shapes and unknown error codes are rejected', () => {
  assert.equal(parseFrame(authFrame, '{"t":"auth"}'), null);
  assert.equal(parseFrame(authFrame, 'not json'), null);
  assert.equal(parseFrame(hubFrame, '{"t":"error","code":"made_up","message":"x"}'), null);
  assert.deepEqual(parseFrame(hubFrame, '{"t":"pending"}'), { t: 'pending' });
});

test('inventory messages: engine up/down and sections parse, anything else does not', () => {
  assert.equal(inventoryMessage.safeParse({ t: 'engine', state: 'down', error: 'gone' }).success, true);
  assert.equal(inventoryMessage.safeParse({ t: 'section', section: 'containers', items: [{ Id: 'x' }], at: 1 }).success, true);
  assert.equal(inventoryMessage.safeParse({ t: 'section', section: 'secrets', items: [], at: 1 }).success, false);
  assert.equal(inventoryMessage.safeParse({ t: 'engine', state: 'up' }).success, false);
});

test('reconnect limiter lets a backing-off agent through and stops a tight loop', () => {
  const limiter = new ReconnectLimiter(12, 10_000);
  let now = 0;
  // A well-behaved agent: 100 ms doubling, capped at 10 s.
  for (const delay of [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]) {
    now += delay;
    assert.equal(limiter.attempt('good', now), 0);
  }
  const results = Array.from({ length: 20 }, (_, i) => limiter.attempt('bad', 1_000 + i * 10));
  assert.equal(
    results.slice(0, 12).every((r) => r === 0),
    true,
  );
  assert.ok(results[12]! > 9_000 && results[12]! <= 10_000);
  assert.equal(limiter.attempt('bad', 1_000 + 19 * 10 + 10_001), 0, 'allowed again once the window has passed');
});

test('HOST:PORT parsing', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:7443', '--listen'), { host: '127.0.0.1', port: 7443 });
  assert.deepEqual(parseHostPort('[::1]:8443', '--listen'), { host: '::1', port: 8443 });
  assert.throws(() => parseHostPort('7443', '--listen'), /HOST:PORT/);
  assert.throws(() => parseHostPort('h:99999', '--listen'), /HOST:PORT/);
});
