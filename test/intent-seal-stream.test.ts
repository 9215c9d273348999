/** The signer's sealed stream (src/cli/intent/seal-stream.ts), read back by a decoder written
 * here from src/protocol/intent-stream.ts alone: every byte arrives in order under a seal that
 * verifies with the operator key, a quiet source is sealed at once, a bulk one per MiB. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { FRAME_DATA, FRAME_HEAD_BYTES, FRAME_SEAL, MAX_SEGMENT, readSeal, sealSigningBytes } from '../src/protocol/intent-stream.ts';
import { INTENT_BODY_HEADER, INTENT_HEADER, decodeIntent } from '../src/protocol/intent.ts';
import { IntentSigner, generateOperatorKey, verifyBytes } from '../src/lib/intent-keys.ts';
import { SealStream } from '../src/cli/intent/seal-stream.ts';
import { bodyDigest, signRequest } from '../src/cli/intent/sign-request.ts';

const signer = new IntentSigner(generateOperatorKey().privateKeyPem, 'ana');
const nonce = randomBytes(18).toString('base64url');

interface Decoded {
  data: Buffer;
  seals: { index: bigint; final: boolean; total: bigint }[];
  maxUnsealed: number;
}

/** Checks every frame as a host would; throws on the first thing wrong. */
function decoder(key: string, streamNonce: string) {
  const hash = createHash('sha256');
  let buffered = Buffer.alloc(0);
  const out: Decoded = { data: Buffer.alloc(0), seals: [], maxUnsealed: 0 };
  const released: Buffer[] = [];
  let pending: Buffer[] = [];
  let unsealed = 0;
  let total = 0n;
  let next = 0n;
  let ended = false;
  return {
    out,
    push(chunk: Buffer): void {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= FRAME_HEAD_BYTES) {
        const length = buffered.readUInt32BE(1);
        if (buffered.length < FRAME_HEAD_BYTES + length) break;
        const type = buffered[0];
        const body = buffered.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + length);
        buffered = buffered.subarray(FRAME_HEAD_BYTES + length);
        assert.ok(!ended, 'nothing after the final seal');
        if (type === FRAME_DATA) {
          hash.update(body);
          pending.push(Buffer.from(body));
          unsealed += body.length;
          total += BigInt(body.length);
          out.maxUnsealed = Math.max(out.maxUnsealed, unsealed);
          assert.ok(unsealed <= MAX_SEGMENT, 'at most MAX_SEGMENT unsealed bytes');
        } else if (type === FRAME_SEAL) {
          const seal = readSeal(body);
          assert.ok(seal, 'a well-formed seal');
          assert.equal(seal.index, next, 'seals in order');
          assert.equal(seal.total, total, 'the seal counts every byte');
          const digest = hash.copy().digest('hex');
          assert.ok(verifyBytes(key, sealSigningBytes(streamNonce, seal.index, seal.final, seal.total, digest), seal.signature), 'the seal verifies');
          next += 1n;
          released.push(...pending);
          pending = [];
          unsealed = 0;
          out.seals.push({ index: seal.index, final: seal.final, total: seal.total });
          if (seal.final) ended = true;
        } else assert.fail(`unknown frame type ${type}`);
      }
      out.data = Buffer.concat(released);
    },
    end(): void {
      assert.equal(buffered.length, 0, 'no partial frame at the end');
      assert.ok(ended, 'a final seal before the end');
    },
  };
}

test('signRequest binds a whole body by digest and a streamed one by the sealed-body header', () => {
  const body = Buffer.from('{"Image":"busybox"}');
  const whole = signRequest(signer, 'shop', 'post', '/v1.41/containers/create?name=a', body);
  const decoded = decodeIntent(whole.headers[INTENT_HEADER]!);
  assert.ok(decoded.ok);
  assert.equal(decoded.intent.claims.op, 'docker POST /v1.41/containers/create?name=a');
  assert.equal(decoded.intent.claims.body, bodyDigest(body));
  assert.equal(decoded.intent.claims.node, 'shop');
  assert.equal(decoded.intent.claims.user, 'ana');
  assert.ok(verifyBytes(signer.publicKey, decoded.intent.signedBytes, decoded.intent.signature));
  assert.equal(whole.headers[INTENT_BODY_HEADER], undefined);
  const empty = signRequest(signer, 'shop', 'GET', '/_ping');
  assert.equal(empty.claims.body, `sha256:${createHash('sha256').digest('hex')}`);
  const streamed = signRequest(signer, 'shop', 'PUT', '/containers/x/archive?path=%2F', 'stream');
  assert.equal(streamed.claims.body, 'stream');
  assert.equal(streamed.headers[INTENT_BODY_HEADER], 'sealed');
  assert.notEqual(streamed.claims.nonce, whole.claims.nonce);
});

test('a bulk stream arrives whole, sealed per MiB, never more than a MiB unsealed', async () => {
  const source = randomBytes(9 * MAX_SEGMENT + 12345);
  const sealer = new SealStream(signer, nonce);
  const check = decoder(signer.publicKey, nonce);
  sealer.on('data', (c: Buffer) => check.push(c));
  const done = new Promise((r) => sealer.on('end', r));
  // Odd-sized chunks, written as fast as the stream takes them.
  for (let at = 0; at < source.length; at += 100_003) {
    if (!sealer.write(source.subarray(at, at + 100_003))) await new Promise((r) => sealer.once('drain', r));
  }
  sealer.end();
  await done;
  check.end();
  assert.ok(check.out.data.equals(source), 'every byte, in order');
  assert.equal(check.out.maxUnsealed, MAX_SEGMENT);
  assert.ok(sealer.seals <= 12, `about one seal per MiB (${sealer.seals})`);
  assert.equal(check.out.seals.at(-1)!.total, BigInt(source.length));
});

test('a quiet source is sealed at once: a keystroke is released without waiting for more', async () => {
  const input = new PassThrough();
  const sealer = new SealStream(signer, nonce);
  const check = decoder(signer.publicKey, nonce);
  sealer.on('data', (c: Buffer) => check.push(c));
  input.pipe(sealer);
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  for (const key of ['l', 's', '\n']) {
    input.write(key);
    // No timer, no more input: a few turns of the event loop and the key is sealed.
    for (let i = 0; i < 4; i++) await turn();
    assert.ok(check.out.data.toString().endsWith(key), `${JSON.stringify(key)} released within four event-loop turns`);
  }
  input.end();
  await new Promise((r) => sealer.on('end', r));
  check.end();
  assert.equal(check.out.data.toString(), 'ls\n');
  assert.deepEqual(
    check.out.seals.map((s) => s.final),
    [false, false, false, true],
  );
});

test('an empty stream is one final seal over nothing', async () => {
  const sealer = new SealStream(signer, nonce);
  const check = decoder(signer.publicKey, nonce);
  sealer.on('data', (c: Buffer) => check.push(c));
  sealer.end();
  await new Promise((r) => sealer.on('end', r));
  check.end();
  assert.equal(check.out.seals.length, 1);
  assert.equal(check.out.seals[0]!.total, 0n);
});

test('a seal checked under another nonce fails: a stream cannot move to another call', async () => {
  const sealer = new SealStream(signer, nonce);
  const check = decoder(signer.publicKey, randomBytes(18).toString('base64url'));
  const frames: Buffer[] = [];
  sealer.on('data', (c: Buffer) => frames.push(c));
  sealer.end(Buffer.from('payload'));
  await new Promise((r) => sealer.on('end', r));
  assert.throws(() => check.push(Buffer.concat(frames)), /the seal verifies/);
});

test('a hijacked call: the JSON body ends at a seal, and stdin continues the same stream', async () => {
  const sealer = new SealStream(signer, nonce);
  const check = decoder(signer.publicKey, nonce);
  const json = Buffer.from('{"Detach":false,"Tty":false}');
  check.push(sealer.sealedPrefix(json));
  assert.ok(check.out.data.equals(json), 'the body is released at its own seal');
  assert.equal(check.out.seals.length, 1);
  assert.equal(check.out.seals[0]!.final, false);
  sealer.on('data', (c: Buffer) => check.push(c));
  sealer.end(Buffer.from('stdin bytes'));
  await new Promise((r) => sealer.on('end', r));
  check.end();
  assert.equal(check.out.data.toString(), `${json}stdin bytes`);
  assert.deepEqual(
    check.out.seals.map((s) => [s.index, s.final]),
    [
      [0n, false],
      [1n, true],
    ],
  );
});
