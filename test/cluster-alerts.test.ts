/**
 * Alert deliveries across hub replicas (issue 17): three in-process replicas on a private
 * PostgreSQL and nats-server, a webhook receiver started here (a real HTTP server on 127.0.0.1
 * that takes a second to answer, as a slow receiver would, so a second sender has time to read
 * the same pending delivery), and three agents linked to the replicas.
 * - A node going offline opens one incident, and its `opened` message is received exactly once,
 *   although every replica looks for due deliveries: only the holder of `alert-deliveries` sends,
 *   and only the holder of `alert-sources` judges (the others never try to open it).
 * - The holder stops while a message is half sent (the receiver has it, and has not answered):
 *   it finishes and records that send before its lease is let go, so the replica that takes the
 *   lease over does not send it again; and the next node's incident is received, again exactly
 *   once.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createLogger } from '../src/lib/logger.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { mintCode, waitFor } from './support/hub-fixture.ts';
import { startReplicas, type Replicas } from './support/replicas.ts';

interface Received {
  incident: string;
  node: string | null;
  event: string;
}

const ANSWER_AFTER_MS = 1_000;
let cluster: Replicas;
let work: string;
const agents = new Map<string, TestAgent>();
const got: Received[] = [];
let server: http.Server;
let receiverUrl: string;
/** Each replica's log lines, by replica id. */
const logs = new Map<string, string[]>();

function replicaLog(replicaId: string) {
  const lines: string[] = [];
  logs.set(replicaId, lines);
  return createLogger('hub', { level: 'info', format: 'json' }, { stream: new Writable({ write: (c, _e, cb) => (lines.push(...String(c).split('\n').filter(Boolean)), cb()) }) });
}

/** The running replica that took `lease` last. */
function leaseHolder(lease = 'alert-deliveries'): string | null {
  let holder: string | null = null;
  let at = -1;
  for (const h of cluster.hubs) {
    const id = h.replica!.replicaId;
    for (const line of logs.get(id) ?? []) {
      const r = JSON.parse(line) as { msg?: string; lease?: string; time?: number };
      if (r.msg === 'lease taken: driving it here' && r.lease === lease && (r.time ?? 0) > at) [holder, at] = [id, r.time ?? 0];
    }
  }
  return holder;
}

/** Incidents each replica tried to open (its store's openIncident calls), by replica id. */
const opensTried = new Map<string, number>();

/** Every received message, counted by incident and event: each must be 1. */
function counts(): Map<string, number> {
  const byKey = new Map<string, number>();
  for (const g of got) byKey.set(`${g.incident} ${g.node} ${g.event}`, (byKey.get(`${g.incident} ${g.node} ${g.event}`) ?? 0) + 1);
  return byKey;
}

function assertOnceEach(): void {
  for (const [key, n] of counts()) assert.equal(n, 1, `${key} was received ${n} times:\n${JSON.stringify(got, null, 1)}`);
}

interface ApiIncident {
  id: string;
  node: string | null;
  state: string;
  deliveries: { event: string; state: string }[];
}

/**
 * The node's incidents once every one of them is resolved and all its messages are sent. A failover
 * may leave the node unlinked past the grace: that incident is real, and must be over first.
 */
async function settledIncidentsOf(name: string): Promise<Set<string>> {
  const hub = cluster.hubs[0]!;
  let ids = new Set<string>();
  await waitFor(
    async () => {
      const res = await hub.api('GET', '/api/v1/alerts');
      const mine = (res.json as ApiIncident[]).filter((i) => i.node === name);
      ids = new Set(mine.map((i) => i.id));
      return mine.every((i) => i.state === 'resolved' && i.deliveries.every((d) => d.state === 'sent'));
    },
    30_000,
    `the ${name} incidents so far to be resolved and sent`,
    200,
  );
  return ids;
}

/**
 * Stops the node's agent once its earlier incidents are over, and waits until the receiver has the
 * opened message of a new one (its answer still a second away). Returns what was received since,
 * of incidents new since, as a function to read it again later.
 */
async function stopUntilOpened(name: string): Promise<() => Received[]> {
  const known = await settledIncidentsOf(name);
  const from = got.length;
  const fresh = () => got.slice(from).filter((g) => !known.has(g.incident));
  await agents.get(name)!.stop();
  agents.delete(name);
  await waitFor(() => fresh().some((g) => g.node === name && g.event === 'opened'), 30_000, `the ${name} offline alert`, 20);
  return fresh;
}

/** Stops the node's agent, waits for its offline alert and then a while longer; returns what was received meanwhile of incidents new since. */
async function nodeGoesOffline(name: string): Promise<Received[]> {
  const fresh = await stopUntilOpened(name);
  // Every replica has looked for due deliveries several times (every 200 ms) while the first send waited for its answer.
  await new Promise((r) => setTimeout(r, 3 * ANSWER_AFTER_MS));
  return fresh();
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-cluster-alerts-'));
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { event: string; incident: { id: string; node: string | null } };
      got.push({ incident: body.incident.id, node: body.incident.node, event: body.event });
      setTimeout(() => res.writeHead(200).end(), ANSWER_AFTER_MS);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  receiverUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  cluster = await startReplicas(3, {
    run: { alertTuning: { offlineGraceMs: 1_500, delivery: { retryBaseMs: 300, pollMs: 200 } } },
    log: replicaLog,
  });
  for (const h of cluster.hubs) {
    const store = h.hub.alerts.store;
    const open = store.openIncident.bind(store);
    const id = h.replica!.replicaId;
    store.openIncident = (...args) => (opensTried.set(id, (opensTried.get(id) ?? 0) + 1), open(...args));
  }
  const [a, b] = cluster.hubs as [NonNullable<(typeof cluster.hubs)[0]>, NonNullable<(typeof cluster.hubs)[1]>];
  const created = await b.api('POST', '/api/v1/alert-receivers', { name: 'ops', format: 'json', url: receiverUrl });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  for (const name of ['al-01', 'al-02', 'al-03']) {
    const agent = await startTestAgent({ hubUrl: a.url, code: await mintCode(a, name), name, stateDir: join(work, name) });
    agents.set(name, agent);
    await agent.waitConnected();
  }
});

after(async () => {
  for (const agent of agents.values()) await agent.stop().catch(() => {});
  await cluster?.close();
  await new Promise<void>((r) => server?.close(() => r()));
  await rm(work, { recursive: true, force: true });
});

test('a node offline on three replicas is one incident, judged by one replica and received exactly once', { timeout: 60_000 }, async () => {
  const since = await nodeGoesOffline('al-01');
  assert.equal(since.filter((g) => g.node === 'al-01' && g.event === 'opened').length, 1, `one opened message for the node: ${JSON.stringify(got)}`);
  assertOnceEach();
  // Only the holder of alert-sources raised it: the others never went to the database with it.
  const judge = leaseHolder('alert-sources');
  assert.ok(judge, 'a replica holds alert-sources');
  assert.deepEqual([...opensTried], [[judge, 1]], 'incidents each replica tried to open');
});

test('the holder stopped in the middle of a send finishes it; the next holder sends each message once', { timeout: 90_000 }, async () => {
  const holder = await waitFor(() => leaseHolder(), 10_000, 'a replica to hold alert-deliveries');
  const i = cluster.hubs.findIndex((h) => h.replica!.replicaId === holder);
  // The receiver has the opened message and answers in a second: the holder is mid-send. Stop it now.
  const fresh = await stopUntilOpened('al-02');
  const agent = agents.get('al-03')!;
  const connects = agent.connects;
  const [stopped] = cluster.hubs.splice(i, 1); // the others are closed with the cluster; this one here
  await stopped!.stop();
  await waitFor(() => leaseHolder() !== null, 15_000, 'another replica to take alert-deliveries over');
  assert.notEqual(leaseHolder(), holder);
  // The new holder has looked for due deliveries several times: the half-sent one was not due.
  await new Promise((r) => setTimeout(r, 3 * ANSWER_AFTER_MS));
  const opened = fresh().filter((g) => g.node === 'al-02' && g.event === 'opened');
  assert.equal(opened.length, 1, `the half-sent message was received once: ${JSON.stringify(got)}`);
  // The agents were linked to replica-a: if it was the one stopped, al-03 is back on another one first.
  if (holder === 'replica-a') await agent.waitConnected(connects + 1, 30_000);
  // Past the grace: had the move left the node unlinked that long, its incident is open by now.
  await new Promise((r) => setTimeout(r, 2_000));
  const since = await nodeGoesOffline('al-03');
  assert.equal(since.filter((g) => g.node === 'al-03' && g.event === 'opened').length, 1, `one opened message for the node: ${JSON.stringify(got)}`);
  assertOnceEach();
});
