/**
 * The web UI's sealing (src/web/lib/intent.ts) as the host reads it: a body over 1 MiB, signed
 * with a WebCrypto Ed25519 key the way a browser holds one (non-extractable), is unsealed by the
 * agent's own Unsealer to exactly the bytes given, seal after seal; a flipped byte fails at its
 * seal. Node's WebCrypto runs the same code the browser does (the running SHA-256 included).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { signDockerCall } from '../src/web/lib/intent.ts';
import type { BrowserKey } from '../src/web/lib/operator-key.ts';
import { INTENT_BODY_HEADER, INTENT_HEADER, SEALED_BODY, decodeIntent, operatorKeyOf } from '../src/protocol/intent.ts';
import { MAX_SEGMENT } from '../src/protocol/intent-stream.ts';
import { Unsealer } from '../src/agent/intent/unseal-stream.ts';

async function browserKey(): Promise<BrowserKey> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
  const publicKey = operatorKeyOf(new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey)));
  return { user: 'alice', keyPair, publicKey, fingerprint: 'test', name: 'test', createdAt: Date.now() };
}

test('a 3.5 MiB upload sealed by the web UI unseals on the host to the same bytes; a flipped byte fails at its seal', async () => {
  const key = await browserKey();
  const data = randomBytes(Math.floor(3.5 * MAX_SEGMENT));
  const signed = await signDockerCall(key, 'n1', 'PUT', '/v1.41/containers/x/archive?path=%2Ftmp', data);
  assert.equal(signed.headers[INTENT_BODY_HEADER], SEALED_BODY);
  const decoded = decodeIntent(signed.headers[INTENT_HEADER]!);
  assert.ok(decoded.ok);
  assert.equal(decoded.intent.claims.key, key.publicKey);
  const framed = Buffer.from(signed.body as Uint8Array);

  const unsealer = new Unsealer(key.publicKey, decoded.intent.claims.nonce);
  const out: Buffer[] = [];
  // In uneven pieces, as a network delivers them.
  for (let at = 0; at < framed.length; at += 300_001) out.push(...unsealer.push(framed.subarray(at, at + 300_001)));
  unsealer.end();
  assert.ok(Buffer.concat(out).equals(data), 'the unsealed bytes are the bytes given');

  const tampered = Buffer.from(framed);
  tampered[Math.floor(framed.length * 0.6)]! ^= 1;
  const strict = new Unsealer(key.publicKey, decoded.intent.claims.nonce);
  assert.throws(() => {
    strict.push(tampered);
    strict.end();
  }, /seal \d+ does not verify|frame/);
});
