/**
 * runChannel's dial gate (src/agent/hub-channel.ts): a process that runs many agents passes one
 * slot-keeper to all of them, and each dial holds a slot until its link is up or the attempt
 * failed. Real channels against a real hub:
 * - Three agents behind a one-slot gate: never two dials at once, and all three link (the slot
 *   is given back on welcome).
 * - The hub stopped and started again on the same port: the failed dials in between give their
 *   slot back too (or the others would wait forever), and all three link again, still one at a time.
 */
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { after, before, test } from 'node:test';
import { runChannel, type ChannelIdentity } from '../src/agent/hub-channel.ts';
import type { TunnelHandler } from '../src/agent/tunnel-handler.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { generateNodeKey, keyIdOf, signWith } from '../src/protocol/node-keys.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';

const NODES = ['gate-a', 'gate-b', 'gate-c'];
let hub: TestHub;
const stop = new AbortController();
const linked = new Map<string, number>();
/** Dials holding a slot now, and the most there ever were. */
let holding = 0;
let most = 0;
let waiting: Array<() => void> = [];

/** One slot: the next waiter gets it when it is given back. */
async function oneSlot(signal: AbortSignal): Promise<() => void> {
  if (holding > 0)
    await new Promise<void>((resolve, reject) => {
      waiting.push(resolve);
      signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  holding++;
  most = Math.max(most, holding);
  let given = false;
  return () => {
    if (given) return;
    given = true;
    holding--;
    waiting.shift()?.();
  };
}

const notFound: TunnelHandler = (_req, res) => {
  res.writeHead(404).end();
};

async function enroll(name: string): Promise<ChannelIdentity> {
  const code = await mintCode(hub, name);
  const keys = generateNodeKey();
  const res = await hub.api('POST', '/api/v1/enroll', { code, publicKey: keys.publicKeyPem });
  assert.equal(res.status, 201, JSON.stringify(res.json));
  const key = createPrivateKey(keys.privateKeyPem);
  return { node: name, keyId: keyIdOf(keys.publicKeyPem), caPem: hub.caPem, sign: (payload) => signWith(key, payload) };
}

function channel(identity: ChannelIdentity, hubUrl: URL): void {
  void runChannel(
    {
      hubUrl,
      identity,
      handler: notFound,
      log: silentLogger(),
      dialGate: oneSlot,
      onConnected: () => linked.set(identity.node, (linked.get(identity.node) ?? 0) + 1),
    },
    stop.signal,
  ).catch(() => {});
}

before(async () => {
  hub = await startTestHub();
});

after(async () => {
  stop.abort();
  waiting = [];
  await hub?.stop();
});

test('three agents behind a one-slot gate dial one at a time, and all link', async () => {
  const hubUrl = new URL(hub.url);
  for (const name of NODES) channel(await enroll(name), hubUrl);
  await waitFor(() => NODES.every((n) => (linked.get(n) ?? 0) >= 1), 20_000, 'all three linked');
  assert.equal(most, 1, 'never two dials at once');
  assert.equal(holding, 0, 'every slot given back once linked');
});

test('dials that fail while the hub is down give their slot back; all link again after it restarts', async () => {
  const hubUrl = new URL(hub.url);
  const { dataDir } = hub;
  await hub.stop({ keepData: true });
  // Failed dials meanwhile: each one must have handed the slot on, or only one agent would be trying.
  await new Promise((r) => setTimeout(r, 1_500));
  assert.ok(holding <= 1, `${holding} slots held`);
  hub = await startTestHub({ dataDir, port: Number(hubUrl.port) });
  await waitFor(() => NODES.every((n) => (linked.get(n) ?? 0) >= 2), 30_000, 'all three linked again');
  assert.equal(most, 1, 'never two dials at once');
  assert.equal(holding, 0, 'every slot given back');
});
