/**
 * Live views across replicas (issue 17): three in-process hubs share a private PostgreSQL and a
 * private nats-server; one real agent beside a private engine holds its link to replica A. Through
 * the REST and SSE endpoints of replicas that do not hold it, the node shows as on A (agent
 * version, engine state and version, counts); a container started on the engine appears in B's
 * containers list, its live stream and its Docker event stream within 2 s, and leaves them when
 * removed; when the agent moves to B, A and C follow within bounded time; when it stops, the
 * old holder's engine state and agent version stop showing everywhere.
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startReplicas, type Replicas } from './support/replicas.ts';
import { encodeView, ViewJoiner, type ViewMessage } from '../src/hub/cluster/view-wire.ts';
import { randomBytes } from 'node:crypto';

const NODE = 'view-01';
const BOUND_MS = 2_000;
let engines: TestEngine[] = [];
let cluster: Replicas;
let agent: TestAgent | undefined;

interface NodeView {
  name: string;
  status: string;
  agentVersion: string | null;
  engine: { state: string; version: string | null };
  counts: { containers: number; running: number };
}

function hub(i: number): TestHub {
  return cluster.hubs[i]!;
}

function who(h: TestHub): string {
  return h.replica!.replicaId;
}

async function view(h: TestHub): Promise<NodeView> {
  const r = await h.api('GET', `/api/v1/nodes/${NODE}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json as NodeView;
}

async function containerNames(h: TestHub): Promise<string[]> {
  const r = await h.api('GET', `/api/v1/nodes/${NODE}/containers`);
  return (r.json as Array<{ Names?: string[] }>).flatMap((c) => c.Names ?? []).map((n) => n.replace(/^\//, ''));
}

function holderOf(h: TestHub): string | null {
  const node = h.hub.registry.byName(NODE);
  const owner = node ? h.replica!.ownership.owner(node.id) : null;
  return owner?.state === 'held' ? owner.replica : null;
}

/** An SSE stream of `h` at `path`: every (event, data) seen so far, until closed. */
function sse(h: TestHub, path: string): { seen: Array<{ event: string; data: string }>; ready: Promise<void>; close(): void } {
  const seen: Array<{ event: string; data: string }> = [];
  const req = https.request(new URL(path, h.url), { ca: h.caPem, headers: { authorization: `Bearer ${h.token}` } });
  const ready = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${path}: ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end = buf.indexOf('\n\n');
        while (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (data !== undefined) seen.push({ event, data });
          end = buf.indexOf('\n\n');
        }
        resolve();
      });
      res.on('error', () => {});
    });
    req.on('error', reject);
  });
  req.end();
  return { seen, ready, close: () => req.destroy() };
}

before(async () => {
  engines = await startEngines(1, { prefix: 'views' });
  cluster = await startReplicas(3);
  agent = await startTestAgent({ hubUrl: hub(0).url, code: await mintCode(hub(0), NODE), docker: engines[0]!.dockerHost });
  await agent.waitConnected(1, 30_000);
  for (const h of cluster.hubs) await waitFor(() => holderOf(h) === 'replica-a', 10_000, `${who(h)} to see A holding the node`);
});

after(async () => {
  await agent?.stop();
  await cluster?.close();
  await stopEngines(engines);
});

test('every replica shows the node as its holder does: agent version, engine state and version, counts', { timeout: 30_000 }, async () => {
  const onA = await waitFor(
    async () => {
      const v = await view(hub(0));
      return v.engine.state === 'up' && v.agentVersion ? v : null;
    },
    10_000,
    'A to see the engine up',
  );
  for (const h of cluster.hubs.slice(1)) {
    const v = await waitFor(
      async () => {
        const v = await view(h);
        return v.engine.state === 'up' ? v : null;
      },
      5_000,
      `${who(h)} to see the engine up`,
    );
    assert.equal(v.status, 'online', who(h));
    assert.equal(v.agentVersion, onA.agentVersion, `${who(h)}: agent version`);
    assert.deepEqual(v.engine, onA.engine, `${who(h)}: engine`);
    assert.deepEqual(v.counts, onA.counts, `${who(h)}: counts`);
  }
});

test('a container started on the engine shows on B (list, live stream, event stream) within 2 s, and leaves when removed', { timeout: 60_000 }, async () => {
  const live = sse(hub(1), '/api/v1/stream');
  const events = sse(hub(1), '/api/v1/events/stream?type=container&name=view-web');
  try {
    await Promise.all([live.ready, events.ready]);
    const containersOnStream = (): string[][] =>
      live.seen
        .filter((e) => e.event === 'containers')
        .map((e) => JSON.parse(e.data) as { node: string; items: Array<{ Names?: string[] }> })
        .filter((e) => e.node === NODE)
        .map((e) => e.items.flatMap((c) => c.Names ?? []));
    const started = Date.now();
    const id = await runContainer(engines[0]!, { name: 'view-web' });
    await waitFor(async () => (await containerNames(hub(1))).includes('view-web'), BOUND_MS, 'B lists the new container');
    await waitFor(() => containersOnStream().some((names) => names.includes('/view-web')), BOUND_MS, "B's live stream carries it");
    await waitFor(() => events.seen.some((e) => e.event === 'docker' && JSON.parse(e.data).action === 'start'), BOUND_MS, "B's event stream carries its start");
    const shown = Date.now() - started;
    assert.ok(shown < BOUND_MS + 1_000, `shown on B ${shown} ms after the engine ran it`);
    assert.equal((await view(hub(2))).counts.containers, (await view(hub(0))).counts.containers, 'C counts it as A does');

    const removed = await engineRequest(engines[0]!.socketPath, 'DELETE', `/containers/${id}?force=true`);
    assert.equal(removed.status, 204);
    const seenBefore = containersOnStream().length;
    await waitFor(async () => !(await containerNames(hub(1))).includes('view-web'), BOUND_MS, 'B no longer lists it');
    await waitFor(
      () =>
        containersOnStream()
          .slice(seenBefore)
          .some((names) => !names.includes('/view-web')),
      BOUND_MS,
      "B's live stream drops it",
    );
    await waitFor(() => events.seen.some((e) => e.event === 'docker' && JSON.parse(e.data).action === 'destroy'), BOUND_MS, "B's event stream carries its removal");
  } finally {
    live.close();
    events.close();
  }
});

test("stats through C: a container's and the host's points stream from the agent A holds", { timeout: 60_000 }, async () => {
  const id = await runContainer(engines[0]!, { name: 'view-stats' });
  const stream = sse(hub(2), `/api/v1/stats/stream?c=${NODE}/${id}&host=${NODE}`);
  try {
    await stream.ready;
    const ticks = (): Array<{ node: string; host?: unknown; containers: Array<{ id: string }> }> => stream.seen.filter((e) => e.event === 'tick').map((e) => JSON.parse(e.data));
    await waitFor(() => ticks().some((t) => t.node === NODE && t.containers.some((c) => c.id.startsWith(id.slice(0, 12)))), 15_000, "a tick with the container's point on C");
    await waitFor(() => ticks().some((t) => t.node === NODE && t.host), 15_000, "a tick with the host's point on C");
  } finally {
    stream.close();
    await engineRequest(engines[0]!.socketPath, 'DELETE', `/containers/${id}?force=true`);
  }
});

test('NATS stopped while a container starts: once the bus is back B shows it (A sends what waited, B asks for a snapshot)', { timeout: 60_000 }, async () => {
  await cluster.nats.stop();
  try {
    await waitFor(() => cluster.hubs.every((h) => !h.replica!.bus.up), 15_000, 'every replica to see the bus down');
    await runContainer(engines[0]!, { name: 'view-gap' });
    await waitFor(async () => (await containerNames(hub(0))).includes('view-gap'), 5_000, 'A (the holder) lists it');
    assert.equal((await containerNames(hub(1))).includes('view-gap'), false, 'B cannot have heard of it');
  } finally {
    await cluster.nats.restart();
  }
  await waitFor(() => hub(1).replica!.bus.up, 15_000, "B's bus to be back");
  await waitFor(async () => (await containerNames(hub(1))).includes('view-gap'), 5_000, 'B lists it after the bus is back');
  await waitFor(async () => (await view(hub(1))).engine.state === 'up', 5_000, 'B shows the engine up again');
});

test('a message larger than the bus takes goes in parts and is joined whole; a lost part loses only that message', async () => {
  const items = Array.from({ length: 400 }, (_, i) => ({ Id: randomBytes(32).toString('hex'), Names: [`/c${i}`], Labels: { noise: randomBytes(300).toString('base64') } }));
  const message: ViewMessage = { kind: 'node', from: 'replica-x', node: 'n1', epoch: 7, agentVersion: '1.0.0', full: true, reports: [{ t: 'section', section: 'containers', items, at: 1 }] };
  const parts = await encodeView(message, 64 * 1024, 'replica-x:1');
  assert.ok(parts.length > 2, `${parts.length} parts`);
  assert.ok(parts.every((p) => p.byteLength <= 64 * 1024));
  const joiner = new ViewJoiner();
  let joined: ViewMessage | null = null;
  for (const p of parts) joined = await joiner.take(p);
  assert.deepEqual(joined, message);
  const again = await encodeView(message, 64 * 1024, 'replica-x:2');
  for (const p of again.filter((_, i) => i !== 1)) assert.equal(await joiner.take(p), null);
  const next = await encodeView({ kind: 'events', from: 'replica-x', events: [] }, 64 * 1024, 'replica-x:3');
  assert.deepEqual(await joiner.take(next[0]!), { kind: 'events', from: 'replica-x', events: [] });
});

test('the agent moves to B: A and C follow within bounded time', { timeout: 60_000 }, async () => {
  const before = await view(hub(0));
  await agent!.stop();
  agent = await startTestAgent({ hubUrl: hub(1).url, stateDir: agent!.stateDir, docker: engines[0]!.dockerHost });
  await agent.waitConnected(1, 30_000);
  for (const h of cluster.hubs) {
    let seen: unknown;
    await waitFor(
      () => {
        const node = h.hub.registry.byName(NODE);
        seen = { owner: node ? h.replica!.ownership.owner(node.id) : 'no such node', membersSynced: h.replica!.members.synced, busUp: h.replica!.bus.up };
        return holderOf(h) === 'replica-b';
      },
      10_000,
      `${who(h)} to see B holding the node`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; it saw ${JSON.stringify(seen)}`);
    });
  }
  for (const h of cluster.hubs) {
    const v = await waitFor(
      async () => {
        const v = await view(h);
        return v.engine.state === 'up' && v.agentVersion ? v : null;
      },
      5_000,
      `${who(h)} to show the engine up through B`,
    );
    assert.equal(v.agentVersion, before.agentVersion, who(h));
    assert.equal(v.engine.version, before.engine.version, who(h));
  }
  await runContainer(engines[0]!, { name: 'view-moved' });
  for (const h of [hub(0), hub(2)]) await waitFor(async () => (await containerNames(h)).includes('view-moved'), BOUND_MS, `${who(h)} lists a container started after the move`);
});

test('the agent stops: its engine state and version stop showing on every replica', { timeout: 60_000 }, async () => {
  for (const h of cluster.hubs) assert.equal((await view(h)).engine.state, 'up', `${who(h)}: up before the agent stops`);
  await agent!.stop();
  agent = undefined;
  for (const h of cluster.hubs) {
    const v = await waitFor(
      async () => {
        const v = await view(h);
        return v.status === 'offline' ? v : null;
      },
      15_000,
      `${who(h)} to show the node offline`,
    );
    assert.equal(v.agentVersion, null, `${who(h)}: no agent version`);
    assert.equal(v.engine.state, 'unknown', `${who(h)}: engine state unknown`);
    assert.ok((await containerNames(h)).includes('view-moved'), `${who(h)}: the last known containers stay`);
  }
});
