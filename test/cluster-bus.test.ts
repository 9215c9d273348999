/**
 * The bus between hub replicas (issue 17) against a real nats-server with JetStream: several
 * in-process "replicas", each with its own NATS connection, membership and ownership. Members
 * join, leave cleanly, and drop out when they fall silent; of two replicas claiming one node at
 * once exactly one holds it; a later claim supersedes and the loser hears `lost` (fencing);
 * release needs the holder's epoch; with NATS killed `owner()` says the bus is down instead of
 * answering from a stale copy, and after it is back the copies converge; a replica cut off the
 * bus loses to a newer claim and re-claims what was swept; a dead replica's claims are offline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Bus, redactNatsUrl } from '../src/hub/cluster/bus.ts';
import { Members } from '../src/hub/cluster/members.ts';
import { Ownership } from '../src/hub/cluster/ownership.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { natsMissing, startBusCut, startNats, type TestNats } from './support/nats.ts';

const skip = natsMissing();
const log = silentLogger();
let nats: TestNats;
const open: Replica[] = [];
let clusters = 0;

interface Replica {
  id: string;
  bus: Bus;
  members: Members;
  ownership: Ownership;
  lost: Array<[string, number]>;
  renewed: Array<[string, number, number]>;
  /** Clean shutdown: leaves the member list, then closes. */
  stop(): Promise<void>;
  /** Like SIGKILL: the connection goes, nothing is said. */
  vanish(): Promise<void>;
}

async function startReplica(cluster: string, id: string, opts: { url?: string; sweepMs?: number; expireMs?: number } = {}): Promise<Replica> {
  const url = opts.url ?? nats.url;
  const sweepMs = opts.sweepMs ?? 200;
  const bus = await Bus.connect({ servers: [url], cluster, name: id, log, pingIntervalMs: 1_000 });
  const members = await Members.join(bus, { id, peerUrl: `https://${id}.peer:7443`, agentUrl: `https://${id}.agents:8443`, startedAt: Date.now(), draining: false }, log, {
    expireMs: opts.expireMs ?? 5_000,
  });
  const ownership = await Ownership.open(bus, members, log, { sweepMs, sweepGraceMs: 1_000 });
  const lost: Array<[string, number]> = [];
  const renewed: Array<[string, number, number]> = [];
  ownership.on('lost', (node, epoch) => lost.push([node, epoch]));
  ownership.on('renewed', (node, from, to) => renewed.push([node, from, to]));
  const replica: Replica = {
    id,
    bus,
    members,
    ownership,
    lost,
    renewed,
    async stop() {
      ownership.close();
      await members.leave();
      await bus.close();
    },
    async vanish() {
      ownership.close();
      await bus.close();
    },
  };
  open.push(replica);
  return replica;
}

/** A fresh cluster name per test, so buckets never carry over. */
function cluster(): string {
  return `t${process.pid}-${++clusters}`;
}

async function until<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('cluster bus', { skip: skip ?? false }, () => {
  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    for (const r of open) await r.vanish().catch(() => {});
    await nats?.close();
  });

  test('the bus names subjects and buckets per cluster and never shows credentials', async () => {
    const bus = await Bus.connect({ servers: [nats.url], cluster: cluster(), name: 'naming', log });
    try {
      assert.ok(bus.up);
      assert.equal(bus.subject('events'), `dockfleet.${bus.cluster}.events`);
      assert.equal(bus.bucketName('owners'), `dockfleet_${bus.cluster}_owners`);
    } finally {
      await bus.close();
    }
    assert.equal(bus.up, false, 'a closed bus is not up');
    assert.equal(redactNatsUrl('nats://fleet:s3cret@nats.internal:4222'), 'nats://[redacted]@nats.internal:4222');
    await assert.rejects(Bus.connect({ servers: [nats.url], cluster: 'has.dot', name: 'x', log }), /cluster name/);
  });

  test('members join, leave cleanly at once, and a silent one drops out within 6 s', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    const x = await startReplica(c, 'x');
    for (const r of [a, b, x]) await until(`${r.id} to see three members`, () => r.members.list().length === 3);
    assert.deepEqual(a.members.agentUrls().sort(), ['https://a.agents:8443', 'https://b.agents:8443', 'https://x.agents:8443']);

    await b.members.setDraining(true);
    await until('a to see b draining', () => a.members.list().find((m) => m.id === 'b')?.draining);
    assert.equal(a.members.agentUrls().at(-1), 'https://b.agents:8443', 'a draining replica is offered last');

    const leftAt = Date.now();
    await b.stop();
    await until('a to drop b', () => !a.members.isLive('b'), 1_000);
    assert.ok(Date.now() - leftAt < 1_000, 'a clean leave is seen at once');

    const silentAt = Date.now();
    await x.vanish();
    await until('a to drop silent x', () => !a.members.isLive('x'), 6_000);
    const took = Date.now() - silentAt;
    assert.ok(took >= 3_000, `x dropped after ${took} ms: too soon for a 5 s expiry`);
    assert.deepEqual(
      a.members.list().map((m) => m.id),
      ['a'],
    );
  });

  test("a second process with a running replica's id refuses to start and names the other; that id restarted after a kill starts", async () => {
    const c = cluster();
    const first = await startReplica(c, 'twin');
    const bus = await Bus.connect({ servers: [nats.url], cluster: c, name: 'twin-copy', log });
    try {
      await assert.rejects(
        Members.join(bus, { id: 'twin', peerUrl: 'https://copy.peer:7443', agentUrl: 'https://copy.agents:8443', startedAt: Date.now(), draining: false }, log),
        /replica id twin is in use by another running replica \(peer https:\/\/twin\.peer:7443/,
      );
      assert.deepEqual(
        first.members.list().map((m) => [m.id, m.peerUrl]),
        [['twin', 'https://twin.peer:7443']],
        'the running one is untouched',
      );
      // Killed: its record is still there, but nobody refreshes it. The next run of that id starts.
      await first.vanish();
      const again = await Members.join(bus, { id: 'twin', peerUrl: 'https://twin.peer:7443', agentUrl: 'https://twin.agents:8443', startedAt: Date.now(), draining: false }, log);
      assert.equal(again.self.id, 'twin');
      await again.leave();
    } finally {
      await bus.close();
    }
  });

  test('two replicas claiming one node at once: exactly one holds it, every time', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    for (let i = 0; i < 60; i++) {
      const node = `node-${i}`;
      const [ra, rb] = await Promise.all([a.ownership.claim(node), b.ownership.claim(node)]);
      const winners = [ra, rb].filter((r) => r.won);
      assert.equal(winners.length, 1, `exactly one claim on ${node} lands`);
      const loser = ra.won ? rb : ra;
      assert.deepEqual(loser, { won: false, reason: 'superseded', holder: { replica: ra.won ? 'a' : 'b', epoch: (winners[0] as { epoch: number }).epoch } });
      const held = await until(`both to agree on ${node}`, () => {
        const oa = a.ownership.owner(node);
        const ob = b.ownership.owner(node);
        return oa.state === 'held' && ob.state === 'held' && oa.epoch === ob.epoch && oa.replica === ob.replica && oa;
      });
      assert.equal(held.state, 'held');
      const holders = [a, b].filter((r) => r.ownership.holds(node, (held as { epoch: number }).epoch));
      assert.equal(holders.length, 1, `exactly one replica holds ${node}`);
      assert.equal(holders[0]!.id, (held as { replica: string }).replica);
    }
    assert.deepEqual([...a.lost, ...b.lost], [], 'nobody held what it lost');
  });

  test('a later claim supersedes: the loser hears lost and no longer holds that epoch', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    const first = await a.ownership.claim('edge-1');
    assert.ok(first.won);
    assert.ok(a.ownership.holds('edge-1', first.epoch));
    await until('b to see a holding', () => b.ownership.owner('edge-1').state === 'held');
    assert.deepEqual(b.ownership.owner('edge-1'), { state: 'held', replica: 'a', epoch: first.epoch });

    const claimedAt = Date.now();
    const second = await b.ownership.claim('edge-1');
    assert.ok(second.won);
    assert.ok(second.epoch > first.epoch, 'the newer claim has the higher epoch');
    await until('a to hear lost', () => a.lost.some(([n, e]) => n === 'edge-1' && e === first.epoch), 1_000);
    assert.ok(Date.now() - claimedAt < 1_000);
    assert.equal(a.ownership.holds('edge-1', first.epoch), false, 'fenced: the old epoch is refused');
    assert.ok(b.ownership.holds('edge-1', second.epoch));
    assert.deepEqual(a.ownership.owner('edge-1'), { state: 'held', replica: 'b', epoch: second.epoch });

    // The same replica claiming again (the agent reconnected to it) supersedes its own older link.
    const third = await b.ownership.claim('edge-1');
    assert.ok(third.won);
    assert.deepEqual(b.lost, [['edge-1', second.epoch]]);
    assert.equal(b.ownership.holds('edge-1', second.epoch), false);
  });

  test('release needs the holder and its epoch', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    const claim = await a.ownership.claim('edge-2');
    assert.ok(claim.won);
    await until('b to see a holding', () => b.ownership.owner('edge-2').state === 'held');
    assert.equal(await b.ownership.release('edge-2', claim.epoch), false, 'a non-holder cannot release');
    assert.equal(await a.ownership.release('edge-2', claim.epoch + 1), false, 'a wrong epoch cannot release');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(b.ownership.owner('edge-2'), { state: 'held', replica: 'a', epoch: claim.epoch });
    assert.equal(await a.ownership.release('edge-2', claim.epoch), true);
    await until('b to see nobody', () => b.ownership.owner('edge-2').state === 'offline');
    assert.deepEqual(b.ownership.owner('edge-2'), { state: 'offline', reason: 'unclaimed' });
    assert.deepEqual(a.lost, [], 'a release is not a loss');
  });

  test('a replica whose membership expires has its claims treated as offline, then swept', async () => {
    const c = cluster();
    // a never sweeps: it must judge by membership alone; s sweeps, but only after a has judged.
    const a = await startReplica(c, 'a', { sweepMs: 3_600_000 });
    const s = await startReplica(c, 's', { expireMs: 8_000 });
    const x = await startReplica(c, 'x');
    const claim = await x.ownership.claim('edge-3');
    assert.ok(claim.won);
    await until('a to see x holding', () => a.ownership.owner('edge-3').state === 'held');
    const vanishedAt = Date.now();
    await x.vanish();
    await until('a to drop x', () => !a.members.isLive('x'), 6_500);
    assert.ok(Date.now() - vanishedAt <= 6_500);
    const gone = a.ownership.owner('edge-3');
    assert.deepEqual(gone, { state: 'offline', reason: 'owner_gone' });
    assert.ok(s.members.isLive('x'), 's has not dropped x yet, so nobody swept');
    await until('s to sweep the dead claim', () => {
      const o = a.ownership.owner('edge-3');
      return o.state === 'offline' && o.reason === 'unclaimed';
    });
  });

  test('NATS killed for 6 s: owner() says bus down at once, nobody is declared gone, and after restart claims stand and copies converge', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    const ca = await a.ownership.claim('edge-a');
    const cb = await b.ownership.claim('edge-b');
    assert.ok(ca.won && cb.won);
    await until('copies to agree', () => a.ownership.owner('edge-b').state === 'held' && b.ownership.owner('edge-a').state === 'held');

    const down = Promise.all([a, b].map((r) => new Promise<number>((resolve) => r.bus.once('down', () => resolve(Date.now())))));
    const killedAt = Date.now();
    await nats.kill();
    const downAt = Math.max(...(await down));
    assert.ok(downAt - killedAt < 1_000, `bus down noticed after ${downAt - killedAt} ms`);
    for (const r of [a, b]) {
      assert.deepEqual(r.ownership.owner('edge-a'), { state: 'unknown', reason: 'bus_down' });
      assert.deepEqual(r.ownership.owner('edge-b'), { state: 'unknown', reason: 'bus_down' });
    }
    assert.equal(a.ownership.holds('edge-a', ca.epoch), false, 'no fenced answer while the bus is down');
    assert.equal(a.ownership.localEpoch('edge-a'), ca.epoch, 'the local link keeps its epoch');
    const refused = await b.ownership.claim('edge-a');
    assert.deepEqual(refused, { won: false, reason: 'bus_down', holder: null });

    const left: string[] = [];
    for (const r of [a, b]) r.members.on('left', (id) => left.push(`${r.id} saw ${id} leave`));
    await new Promise((r) => setTimeout(r, 6_000)); // past the 5 s member expiry
    assert.deepEqual(left, [], 'our own outage is no reason to declare the others gone');
    assert.equal(a.members.synced, false);
    await nats.restart();
    for (const r of [a, b]) {
      await until(`${r.id} to trust its copy again`, () => r.ownership.owner('edge-a').state !== 'unknown', 10_000);
      await until(`${r.id} to see both members`, () => r.members.list().length === 2, 10_000);
    }
    for (const r of [a, b]) {
      assert.deepEqual(r.ownership.owner('edge-a'), { state: 'held', replica: 'a', epoch: ca.epoch });
      assert.deepEqual(r.ownership.owner('edge-b'), { state: 'held', replica: 'b', epoch: cb.epoch });
    }
    assert.ok(a.ownership.holds('edge-a', ca.epoch));
    assert.deepEqual([...a.lost, ...b.lost], []);
  });

  test('NATS back without its store: buckets come back, members re-announce, claims are re-asserted', async () => {
    const c = cluster();
    const a = await startReplica(c, 'a');
    const b = await startReplica(c, 'b');
    const claim = await a.ownership.claim('edge-w');
    assert.ok(claim.won);
    await until('b to see a holding', () => b.ownership.owner('edge-w').state === 'held');
    await nats.kill();
    await nats.restart({ wipeStore: true });
    const renewed = await until('a to re-assert edge-w', () => a.renewed.find(([n]) => n === 'edge-w'), 10_000);
    assert.equal(renewed[1], claim.epoch);
    await until('b to see a holding edge-w at the new epoch', () => {
      const o = b.ownership.owner('edge-w');
      return o.state === 'held' && o.replica === 'a' && o.epoch === renewed[2];
    });
    await until('both to see both members', () => a.members.list().length === 2 && b.members.list().length === 2);
    assert.ok(a.ownership.holds('edge-w', renewed[2]));
    assert.deepEqual(a.lost, []);
  });

  test('a replica cut off the bus: a newer claim elsewhere wins, a swept claim is re-asserted', async () => {
    const c = cluster();
    const cut = await startBusCut(nats.port);
    try {
      const a = await startReplica(c, 'a', { url: cut.url });
      const b = await startReplica(c, 'b');
      const moved = await a.ownership.claim('edge-moved');
      const kept = await a.ownership.claim('edge-kept');
      assert.ok(moved.won && kept.won);
      await until('b to see a holding both', () => b.ownership.owner('edge-kept').state === 'held');

      await cut.cut();
      await until('a to know the bus is down', () => !a.bus.up, 3_000);
      assert.equal(a.ownership.owner('edge-kept').state, 'unknown');
      await until('b to see a gone and its claims offline', () => b.ownership.owner('edge-kept').state === 'offline', 6_500);
      // The agent of edge-moved reconnects to b meanwhile.
      const taken = await b.ownership.claim('edge-moved');
      assert.ok(taken.won);
      // b sweeps a's remaining claim (edge-kept) as a dead replica's.
      await until('b to sweep edge-kept', () => {
        const o = b.ownership.owner('edge-kept');
        return o.state === 'offline' && o.reason === 'unclaimed';
      });

      await cut.restore();
      await until('a to hear it lost edge-moved', () => a.lost.some(([n, e]) => n === 'edge-moved' && e === moved.epoch), 10_000);
      assert.equal(a.ownership.holds('edge-moved', moved.epoch), false);
      const renewed = await until('a to re-assert edge-kept', () => a.renewed.find(([n]) => n === 'edge-kept'), 10_000);
      assert.equal(renewed[1], kept.epoch);
      assert.ok(renewed[2] > kept.epoch);
      await until('b to see a holding edge-kept again', () => {
        const o = b.ownership.owner('edge-kept');
        return o.state === 'held' && o.replica === 'a' && o.epoch === renewed[2];
      });
      assert.ok(a.ownership.holds('edge-kept', renewed[2]));
      assert.deepEqual(b.ownership.owner('edge-moved'), { state: 'held', replica: 'b', epoch: taken.epoch });
    } finally {
      await cut.close();
    }
  });
});
