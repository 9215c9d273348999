/**
 * Alerts end to end: a webhook receiver started here (a real HTTP server on 127.0.0.1) gets
 * exactly one alert per incident — a node going offline (its agent stopped), a container
 * restarting in a loop on a real engine, a failing deploy job — one resolve message when the
 * node comes back, a retry when it answers 500 before 200, and nothing again after a hub
 * restart. Receiver secrets never show in answers or in the database file. Plus the formats.
 * @serial-lane: it times deliveries and retries closely, so it runs with no other file beside it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { formatMessage } from '../src/hub/alerts/alert-formats.ts';
import { Alerts } from '../src/hub/alerts/alerts.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub, removeHubData } from './support/hub-fixture.ts';
import { freePort } from './support/processes.ts';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  answered: number;
}

/** A webhook receiver: records every POST; answers 500 to the next `failNext` ones. */
async function startReceiver(): Promise<{ url: string; got: Received[]; failNext: number; close(): Promise<void> }> {
  const rx = { url: '', got: [] as Received[], failNext: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answered = rx.failNext > 0 ? (rx.failNext--, 500) : 200;
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* ntfy bodies are text */
      }
      rx.got.push({ path: req.url ?? '', headers: req.headers, body, answered });
      res.writeHead(answered).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  rx.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  rx.close = () => new Promise((r) => server.close(() => r()));
  return rx;
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const delivered = (rx: { got: Received[] }, kind: string, event: string): Received[] => rx.got.filter((g) => g.answered === 200 && g.body?.incident?.kind === kind && g.body?.event === event);

test('formats: generic JSON schema, ntfy publish headers, Slack text and blocks', () => {
  const i = { ...Alerts.testIncident(), kind: 'node-offline', severity: 'critical' as const, node: 'shop-01', title: 'Node shöp-01 is offline' };
  const json = JSON.parse(formatMessage('json', 'opened', i, null).body);
  assert.equal(json.schema, 'dockfleet.alert.v1');
  assert.equal(json.event, 'opened');
  assert.equal(json.incident.node, 'shop-01');
  const ntfy = formatMessage('ntfy', 'opened', i, null);
  assert.equal(ntfy.headers.priority, '5');
  assert.match(ntfy.headers.tags!, /rotating_light/);
  assert.match(ntfy.headers.title!, /^=\?UTF-8\?B\?/, 'a non-ASCII title is an encoded word');
  assert.equal(ntfy.body, i.detail);
  assert.equal(formatMessage('ntfy', 'resolved', i, null).headers.priority, '2');
  const slack = JSON.parse(formatMessage('slack', 'resolved', i, null).body);
  assert.match(slack.text, /^:white_check_mark: Resolved: /);
  assert.equal(slack.blocks[0].type, 'section');
});

test('alerts: one message per incident, retried on 500, resolved once, nothing resent after a hub restart', { timeout: 240_000 }, async (t) => {
  const rx = await startReceiver();
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-alerts-'));
  const hubDir = join(dir, 'hub');
  const port = await freePort();
  let engine: TestEngine | undefined;
  let hub: TestHub | undefined;
  const agents: TestAgent[] = [];
  t.after(async () => {
    for (const a of agents) await a.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    await rx.close();
    await removeHubData(dir);
  });
  [engine] = (await startEngines(1, { prefix: 'alerts' })) as [TestEngine];
  const tuning = { offlineGraceMs: 1_500, delivery: { retryBaseMs: 300 }, containerLoop: { restarts: 3, windowMs: 60_000 } };
  hub = await startTestHub({ dataDir: hubDir, port, run: { alertTuning: tuning } });

  // A receiver whose URL and header hold secrets: sealed at rest, never shown.
  const created = await hub.api('POST', '/api/v1/alert-receivers', { name: 'ops', format: 'json', url: `${rx.url}/hook?key=urlsecret123`, headers: { authorization: 'Bearer hdrsecret456' } });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const bad = await hub.api('POST', '/api/v1/alert-receivers', { name: 'x', format: 'carrier-pigeon', url: 'ftp://nope' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'validation_failed');
  const listed = await hub.api('GET', '/api/v1/alert-receivers');
  assert.equal(listed.json.length, 1);
  assert.doesNotMatch(JSON.stringify(listed.json), /urlsecret123|hdrsecret456/);
  assert.deepEqual(listed.json[0].headerNames, ['authorization']);
  const db = await readFile(join(hubDir, 'dockfleet.db'));
  assert.equal(db.includes('urlsecret123') || db.includes('hdrsecret456'), false, 'the database holds the target sealed');

  // The test button sends now and says what the receiver answered.
  const tested = await hub.api('POST', `/api/v1/alert-receivers/${created.json.id}/test`);
  assert.deepEqual(tested.json, { ok: true, status: 200, error: null });
  assert.equal(rx.got[0]?.body.event, 'test');
  assert.equal(rx.got[0]?.headers.authorization, 'Bearer hdrsecret456');
  assert.equal(rx.got[0]?.path, '/hook?key=urlsecret123');
  // The test's outcome is kept as the receiver's latest test (no incident, no delivery is made).
  const afterTest = (await hub.api('GET', '/api/v1/alert-receivers')).json[0];
  assert.deepEqual({ ...afterTest.lastTest, at: undefined }, { ok: true, status: 200, error: null, at: undefined });
  assert.ok(Date.now() - Date.parse(afterTest.lastTest.at) < 10_000);
  assert.equal(afterTest.lastDelivery, null, "a test is not an incident's delivery");
  assert.deepEqual((await hub.api('GET', '/api/v1/alerts')).json, []);
  // A failing test is kept too, with what went wrong; a later success replaces it.
  rx.failNext = 1;
  assert.deepEqual((await hub.api('POST', `/api/v1/alert-receivers/${created.json.id}/test`)).json, { ok: false, status: 500, error: 'HTTP 500' });
  assert.deepEqual((await hub.api('GET', '/api/v1/alert-receivers')).json[0].lastTest.status, 500);
  assert.equal((await hub.api('GET', '/api/v1/alert-receivers')).json[0].lastTest.ok, false);
  await hub.api('POST', `/api/v1/alert-receivers/${created.json.id}/test`);
  const lastTest = (await hub.api('GET', '/api/v1/alert-receivers')).json[0].lastTest;
  assert.equal(lastTest.ok, true);
  rx.got.splice(0); // the three test sends; what follows counts incidents only

  const hubUrl = hub.url;
  const withEngine = await startTestAgent({ hubUrl, code: await mintCode(hub, 'box-a'), name: 'box-a', docker: engine.dockerHost, stateDir: join(dir, 'a') });
  const leaving = await startTestAgent({ hubUrl, code: await mintCode(hub, 'box-b'), name: 'box-b', stateDir: join(dir, 'b') });
  agents.push(withEngine, leaving);
  await withEngine.waitConnected();
  await leaving.waitConnected();

  // Node offline: the receiver answers 500 once, then the retry gets through; one alert.
  rx.failNext = 1;
  await leaving.stop();
  agents.splice(agents.indexOf(leaving), 1);
  await until('the node-offline alert', () => delivered(rx, 'node-offline', 'opened').length === 1).catch((err: Error) => {
    throw new Error(`${err.message}; the receiver got ${JSON.stringify(rx.got.map((g) => [g.answered, g.body?.event, g.body?.incident?.kind, g.body?.incident?.node]))}`);
  });
  const offlineTries = rx.got.filter((g) => g.body?.incident?.kind === 'node-offline');
  assert.deepEqual(
    offlineTries.map((g) => g.answered),
    [500, 200],
    `one failed try, then one delivery (all sends: ${JSON.stringify(rx.got.map((g) => [g.body?.incident?.kind ?? g.body?.event, g.body?.event, g.body?.incident?.node, g.answered]))})`,
  );
  assert.equal(offlineTries[0]!.body.incident.id, offlineTries[1]!.body.incident.id);
  assert.equal(offlineTries[1]!.body.incident.node, 'box-b');

  // A container restarting in a loop on a real engine.
  await runContainer(engine, { name: 'crashy', cmd: ['sh', '-c', 'exit 3'], init: false, hostConfig: { RestartPolicy: { Name: 'always' } } });
  const loop = await until('the restart-loop alert', () => delivered(rx, 'container', 'opened')[0], 60_000);
  assert.match(loop.body.incident.title, /crashy on box-a is restarting in a loop/);

  // A failing job: a deploy whose image cannot be pulled.
  const deploy = await hub.api('POST', '/api/v1/stacks/broken/deploy', {
    compose: 'services:\n  app:\n    image: dockfleet-test/no-such-image:1\n',
    target: { node: 'box-a' },
  });
  assert.equal(deploy.status, 202, JSON.stringify(deploy.json));
  const failed = await until('the job-failed alert', () => delivered(rx, 'job-failed', 'opened')[0], 90_000);
  assert.equal(failed.body.incident.node, 'box-a');
  assert.match(failed.body.incident.title, /deploy of broken failed on box-a/);

  // The UI's view: open incidents with each receiver's delivery state.
  const view = await hub.api('GET', '/api/v1/alerts');
  const offline = view.json.find((i: any) => i.kind === 'node-offline');
  assert.equal(offline.state, 'open');
  assert.deepEqual(
    offline.deliveries.map((d: any) => [d.receiver, d.event, d.state, d.attempts, d.lastStatus]),
    [['ops', 'opened', 'sent', 2, 200]],
  );

  // Restart the hub on the same data: the open incidents continue, nothing is sent again.
  await new Promise((r) => setTimeout(r, 1_000)); // let the loop's detail settle before the restart
  const before = rx.got.length;
  await hub.stop({ keepData: true });
  hub = await startTestHub({ dataDir: hubDir, port, run: { alertTuning: { ...tuning, offlineGraceMs: 15_000 } } });
  await withEngine.waitConnected(2, 30_000);
  assert.deepEqual((await hub.api('GET', '/api/v1/alert-receivers')).json[0].lastTest, lastTest, 'the latest test survives the restart');
  await new Promise((r) => setTimeout(r, 4_000));
  assert.deepEqual(
    rx.got.slice(before).map((g) => `${g.body?.incident?.kind} ${g.body?.event}`),
    [],
    'nothing resent after the restart',
  );

  // The node comes back: exactly one resolve message.
  const back = await startTestAgent({ hubUrl, name: 'box-b', stateDir: join(dir, 'b') });
  agents.push(back);
  await back.waitConnected();
  await until('the node-offline resolve', () => delivered(rx, 'node-offline', 'resolved').length === 1);
  await new Promise((r) => setTimeout(r, 1_500));
  assert.equal(delivered(rx, 'node-offline', 'opened').length, 1);
  assert.equal(delivered(rx, 'node-offline', 'resolved').length, 1);
  assert.equal(delivered(rx, 'container', 'opened').length, 1);
  assert.equal(delivered(rx, 'job-failed', 'opened').length, 1);
  const ids = new Set(rx.got.filter((g) => g.answered === 200 && g.body?.event === 'opened').map((g) => g.body.incident.id));
  assert.equal(ids.size, 3, 'three incidents, one opening message each');
});

test("a node already offline when the hub starts: one alert after the grace, counted from the hub's start", { timeout: 90_000 }, async (t) => {
  const rx = await startReceiver();
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-alerts-start-'));
  const hubDir = join(dir, 'hub');
  const port = await freePort();
  let hub: TestHub | undefined;
  t.after(async () => {
    await hub?.stop();
    await rx.close();
    await removeHubData(dir);
  });
  // First run: the node enrolls, connects and leaves; the hub stops long before its (60 s) grace ends.
  hub = await startTestHub({ dataDir: hubDir, port, run: { alertTuning: { offlineGraceMs: 60_000 } } });
  assert.equal((await hub.api('POST', '/api/v1/alert-receivers', { name: 'ops', format: 'json', url: `${rx.url}/hook` })).status, 201);
  const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'box-c'), name: 'box-c', stateDir: join(dir, 'c') });
  await agent.waitConnected();
  await agent.stop();
  await hub.stop({ keepData: true });
  assert.equal(rx.got.length, 0, 'nothing sent in the first run');

  // Second run: box-c never comes back. The clock starts at the hub's start (its last heartbeat is older).
  const grace = 2_500;
  const started = Date.now();
  hub = await startTestHub({ dataDir: hubDir, port, run: { alertTuning: { offlineGraceMs: grace, delivery: { retryBaseMs: 300 } } } });
  assert.equal((await hub.api('GET', '/api/v1/nodes')).json.find((n: { name: string }) => n.name === 'box-c')?.status, 'offline');
  await until('the node-offline alert', () => delivered(rx, 'node-offline', 'opened').length > 0, 30_000);
  const openedAt = Date.parse(delivered(rx, 'node-offline', 'opened')[0]!.body.incident.openedAt);
  assert.ok(openedAt - started >= grace, `opened ${openedAt - started} ms after the start, before the ${grace} ms grace`);
  await new Promise((r) => setTimeout(r, 3_000)); // several more looks of the source
  assert.equal(delivered(rx, 'node-offline', 'opened').length, 1, 'exactly one alert');
  assert.equal(rx.got.length, 1, 'and nothing else');
  const incidents = (await hub.api('GET', '/api/v1/alerts')).json.filter((i: { kind: string }) => i.kind === 'node-offline');
  assert.deepEqual(
    incidents.map((i: { subject: string; state: string }) => [i.subject, i.state]),
    [['box-c', 'open']],
  );
});
