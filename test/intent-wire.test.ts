/**
 * The signed intent's wire form as a host reads it (protocol/intent.ts): the exact claims and
 * nothing else, strict base64url, strict UTF-8. Hand-checked (no schema library on this path),
 * so each rule is tried with the input that breaks it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IntentSigner, generateOperatorKey } from '../src/lib/intent-keys.ts';
import { decodeIntent, dockerOp, encodeIntent, fromBase64Url, intentSigningBytes, toBase64Url } from '../src/protocol/intent.ts';

const signer = new IntentSigner(generateOperatorKey().privateKeyPem, 'alice');
const good = signer.intent('n1', dockerOp('GET', '/_ping'), 'stream');

/** A wire form around this payload JSON text, signed by the test key (the signature is fine; the payload is the point). */
function wireOf(json: string | Uint8Array): string {
  const payload = toBase64Url(typeof json === 'string' ? new TextEncoder().encode(json) : json);
  return encodeIntent(payload, signer.signBytes(intentSigningBytes(payload)));
}

test('a signed intent reads back to its claims and the bytes that were signed', () => {
  const read = decodeIntent(good.wire);
  assert.ok(read.ok);
  assert.deepEqual(read.intent.claims, good.claims);
  assert.equal(Buffer.from(read.intent.signedBytes).toString(), `dockfleet-intent-v1.${good.wire.split('.')[0]}`);
  assert.equal(read.intent.signature.length, 64);
});

test('base64url is strict both ways and round-trips every length', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    const text = toBase64Url(bytes);
    assert.match(text, /^[A-Za-z0-9_-]*$/);
    assert.equal(text, Buffer.from(bytes).toString('base64url'));
    assert.deepEqual([...fromBase64Url(text)], [...bytes]);
  }
  for (const bad of ['a', 'abcde', 'ab+c', 'ab/c', 'ab=c', 'ab c', 'abc=']) assert.throws(() => fromBase64Url(bad), /not base64url/, bad);
});

test('each claim is checked: a missing, wrong or extra member is named', () => {
  const claims = good.claims as unknown as Record<string, unknown>;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...claims, v: 2 }, /v: missing or invalid/],
    [{ ...claims, key: 'ed25519:short' }, /key: missing or invalid/],
    [{ ...claims, node: '' }, /node: missing or invalid/],
    [{ ...claims, node: 'n'.repeat(129) }, /node: missing or invalid/],
    [{ ...claims, op: 7 }, /op: missing or invalid/],
    [{ ...claims, body: 'sha256:XYZ' }, /body: missing or invalid/],
    [{ ...claims, nonce: 'short' }, /nonce: missing or invalid/],
    [{ ...claims, iat: 1.5 }, /iat: missing or invalid/],
    [{ ...claims, exp: -1 }, /exp: missing or invalid/],
    [{ ...claims, exp: 2 ** 60 }, /exp: missing or invalid/],
    [{ ...claims, user: 'u'.repeat(129) }, /user: missing or invalid/],
    [{ ...claims, admin: true }, /admin: not a claim/],
    [Object.fromEntries(Object.entries(claims).filter(([k]) => k !== 'nonce')), /nonce: missing or invalid/],
  ];
  for (const [value, reason] of cases) {
    const read = decodeIntent(wireOf(JSON.stringify(value)));
    assert.equal(read.ok, false, JSON.stringify(value));
    if (!read.ok) assert.match(read.reason, reason);
  }
  // A member named like something every object inherits is still not a claim.
  const proto = decodeIntent(wireOf(JSON.stringify(claims).replace(/^\{/, '{"__proto__":{"x":1},')));
  assert.equal(proto.ok, false);
  if (!proto.ok) assert.match(proto.reason, /__proto__: not a claim/);
  for (const notObject of ['[]', 'null', '"x"', '1']) assert.equal(decodeIntent(wireOf(notObject)).ok, false, notObject);
});

test('the payload must be UTF-8 JSON; a user name may hold any character', () => {
  const bytes = new TextEncoder().encode(JSON.stringify(good.claims));
  const broken = Uint8Array.from([...bytes.slice(0, 10), 0xff, ...bytes.slice(10)]);
  const read = decodeIntent(wireOf(broken));
  assert.equal(read.ok, false);
  if (!read.ok) assert.match(read.reason, /not valid base64url JSON/);
  const named = decodeIntent(wireOf(JSON.stringify({ ...good.claims, user: 'Zoë \uFFFD 漢' })));
  assert.ok(named.ok);
  assert.equal(named.intent.claims.user, 'Zoë \uFFFD 漢');
  for (const shape of ['', 'a.b.c', '.x', 'x.']) assert.equal(decodeIntent(shape).ok, false, shape);
});
