/** The browser terminal's WebSocket opens only from the hub's own https origin: exactly its
 * scheme, host and port. `Origin: null` and an http:// origin are refused with 403. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { hubRequest } from './support/hub-request.ts';

let engines: TestEngine[];
let hub: TestHub;
let agent: TestAgent;
let cookie: string;
let path: string;

before(async () => {
  engines = await startEngines(1, { prefix: 'term' });
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'term-0'), docker: engines[0]!.dockerHost });
  await agent.waitConnected();
  await runContainer(engines[0]!, { name: 'shell' });
  path = '/api/v1/nodes/term-0/containers/shell/terminal';
  const made = await hub.api('POST', '/api/v1/users', { name: 'olga', role: 'operator', password: 'a long enough password 1' });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const signedIn = await hubRequest(hub.url, hub.caPem, '/api/v1/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'olga', password: 'a long enough password 1' }),
  });
  assert.equal(signedIn.status, 200, signedIn.text);
  cookie = String(signedIn.headers['set-cookie']).split(';')[0]!;
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  await stopEngines(engines ?? []);
});

/** Opens the terminal WebSocket; resolves 101 when it opened, else the refusal's status. */
function open(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${hub.url.replace(/^https/, 'wss')}${path}`, { ca: hub.caPem, headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', reject);
  });
}

const own = (): string => hub.url;

test('the hub’s own https origin opens a terminal', async () => {
  assert.equal(await open({ cookie, origin: own() }), 101);
});

test('Origin: null is refused with 403, not a server error', async () => {
  assert.equal(await open({ cookie, origin: 'null' }), 403);
});

test('an http:// origin for the https hub is refused with 403', async () => {
  assert.equal(await open({ cookie, origin: own().replace(/^https/, 'http') }), 403);
});

test('another port or host is refused, with a token too', async () => {
  const url = new URL(own());
  assert.equal(await open({ cookie, origin: `https://${url.hostname}:1` }), 403);
  assert.equal(await open({ authorization: `Bearer ${hub.token}`, origin: 'https://evil.example' }), 403);
  assert.equal(await open({ authorization: `Bearer ${hub.token}` }), 101, 'a tool without a browser sends no Origin');
});
