/** A customer scoped to their own hosts: two real nodes, one granted by name and one by label;
 * the customer's view checked through the REST API, the live feed and the stock docker CLI
 * with its own client certificate, including attempts to reach the other node by name, by the
 * fleet endpoint, by a container ID of the other node and by the feed. Grants and labels apply
 * at once; tokens expire and record their last use. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { hashToken } from '../src/hub/admin-token.ts';
import { DATABASE_FILE } from '../src/hub/run-hub.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';

let engines: TestEngine[];
let hub: TestHub;
let work: string;
const agents: TestAgent[] = [];
let customerToken: string;
let otherContainer: string;
let env: NodeJS.ProcessEnv;

const docker = (args: string[], extra: NodeJS.ProcessEnv = {}) => run(DOCKER_BIN, args, { ...env, DOCKER_CLI_HINTS: 'false', ...extra });

before(async () => {
  engines = await startEngines(2, { prefix: 'acc' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-acc-'));
  hub = await startTestHub();
  for (const [i, name] of ['shop-01', 'other-01'].entries()) {
    const agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, name), docker: engines[i]!.dockerHost });
    await agent.waitConnected();
    agents.push(agent);
  }
  await runContainer(engines[0]!, { name: 'mine' });
  otherContainer = await runContainer(engines[1]!, { name: 'theirs' });
  const created = await hub.api('POST', '/api/v1/users', { name: 'cust', role: 'viewer' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  customerToken = created.json.token;
  assert.equal((await hub.api('PATCH', '/api/v1/users/cust', { scoped: true })).status, 200);
  const grant = await hub.api('POST', '/api/v1/users/cust/grants', { node: 'shop-01', role: 'operator' });
  assert.equal(grant.status, 201, JSON.stringify(grant.json));
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes/other-01/containers')).json.length > 0, 10_000, 'inventory of other-01');
  await writeFile(join(work, 'ca.pem'), hub.caPem);
  const p = spawnDockfleet(['docker-env', 'shop-01', '--hub', hub.url, '--token', customerToken, '--ca', join(work, 'ca.pem'), '--dir', join(work, 'certs')]);
  const { code } = await p.exited;
  assert.equal(code, 0, p.stderr());
  env = parseExports(p.stdout());
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
  if (engines) await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

const asCustomer = (method: string, path: string, body?: unknown) => hub.api(method, path, body, customerToken);

test('REST: the customer lists only its node, and the other node is absent by every path', async () => {
  const nodes = await asCustomer('GET', '/api/v1/nodes');
  assert.deepEqual(
    nodes.json.map((n: { name: string }) => n.name),
    ['shop-01'],
  );
  assert.equal((await asCustomer('GET', '/api/v1/nodes/shop-01/containers')).status, 200);
  for (const path of ['/api/v1/nodes/other-01', '/api/v1/nodes/other-01/containers', '/api/v1/nodes/other-01/images', '/api/v1/nodes/other-01/ping']) {
    const res = await asCustomer('GET', path);
    assert.equal(res.status, 404, path);
    assert.equal(res.json.error.code, 'node_not_found', path);
  }
  // The same answer as a node that does not exist: names of other hosts do not leak.
  assert.equal((await asCustomer('GET', '/api/v1/nodes/no-such-node')).json.error.code, 'node_not_found');
  // Events and routes are answered filtered to the customer's nodes (test/web-node-roles.test.ts).
  for (const path of ['/api/v1/stacks', '/api/v1/jobs', '/api/v1/users', '/api/v1/enrollments', '/api/v1/alerts', '/api/v1/certificates']) {
    assert.equal((await asCustomer('GET', path)).status, 403, path);
  }
  // Stats are a stream of their own (not the REST app): the same rule, node by node.
  const someId = 'a'.repeat(64);
  for (const query of [`c=other-01/${someId}`, 'host=other-01', `c=shop-01/${someId}&host=other-01`]) {
    const res = await asCustomer('GET', `/api/v1/stats/stream?${query}`);
    assert.equal(res.status, 404, query);
    assert.equal(res.json?.error?.code, 'node_not_found', query);
  }
  assert.equal((await asCustomer('POST', '/api/v1/nodes/other-01/revoke')).json.error.code, 'node_not_found');
});

test('docker CLI with the customer certificate: its node works, the other node is refused by name, fleet and container ID', async () => {
  const mine = await docker(['ps', '--format', '{{.Names}}']);
  assert.equal(mine.code, 0, mine.stderr);
  assert.match(mine.stdout, /mine/);
  // Operator on its node: it may change things there.
  const stop = await docker(['stop', '-t', '0', 'mine']);
  assert.equal(stop.code, 0, stop.stderr);
  const other = await docker(['ps'], { DOCKER_HOST: env.DOCKER_HOST!.replace(/shop-01$/, 'other-01') });
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /no node named other-01/);
  const fleet = await docker(['ps', '-a', '--format', '{{.Names}} {{.Label "dockfleet.node"}}'], { DOCKER_HOST: env.DOCKER_HOST!.replace(/nodes\/shop-01$/, 'fleet') });
  assert.equal(fleet.code, 0, fleet.stderr);
  assert.match(fleet.stdout, /mine shop-01/);
  assert.doesNotMatch(fleet.stdout, /theirs|other-01/);
  // The other node's container ID, tried through the customer's own node, finds nothing.
  const inspect = await docker(['inspect', otherContainer]);
  assert.notEqual(inspect.code, 0);
  const removed = await docker(['kill', otherContainer]);
  assert.notEqual(removed.code, 0);
  assert.equal(
    (await hub.api('GET', '/api/v1/nodes/other-01/containers')).json.some((c: { Id: string }) => c.Id === otherContainer),
    true,
  );
});

test('live feed: the customer receives only its own node and containers', async () => {
  const text = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(new URL('/api/v1/stream', hub.url), { ca: hub.caPem, headers: { authorization: `Bearer ${customerToken}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      setTimeout(() => {
        req.destroy();
        resolve(body);
      }, 1_500);
    });
    req.on('error', (err) => (err.message.includes('socket hang up') ? undefined : reject(err)));
    req.end();
  });
  assert.match(text, /event: nodes/);
  assert.match(text, /shop-01/);
  assert.doesNotMatch(text, /other-01|theirs/);
});

test('a label grant covers a node the moment it gains the label, and stops when it loses it', async () => {
  const g = await hub.api('POST', '/api/v1/users/cust/grants', { selector: 'customer=acme', role: 'viewer' });
  assert.equal(g.status, 201);
  assert.equal((await asCustomer('GET', '/api/v1/nodes/other-01')).status, 404);
  assert.equal((await hub.api('PUT', '/api/v1/nodes/other-01/labels', { labels: { customer: 'acme' } })).status, 200);
  assert.equal((await asCustomer('GET', '/api/v1/nodes/other-01')).status, 200);
  // A viewer grant reads but does not change.
  const kill = await docker(['kill', otherContainer], { DOCKER_HOST: env.DOCKER_HOST!.replace(/shop-01$/, 'other-01') });
  assert.notEqual(kill.code, 0);
  assert.match(kill.stderr, /may only read/);
  assert.equal((await hub.api('PUT', '/api/v1/nodes/other-01/labels', { labels: { customer: null } })).status, 200);
  assert.equal((await asCustomer('GET', '/api/v1/nodes/other-01')).status, 404);
  assert.equal((await hub.api('DELETE', `/api/v1/users/cust/grants/${g.json.id}`)).status, 200);
});

test('removing the grant closes the node at once; a disabled user is refused everywhere', async () => {
  const grants = await hub.api('GET', '/api/v1/users/cust/grants');
  for (const g of grants.json) assert.equal((await hub.api('DELETE', `/api/v1/users/cust/grants/${g.id}`)).status, 200);
  assert.deepEqual((await asCustomer('GET', '/api/v1/nodes')).json, []);
  const ps = await docker(['ps']);
  assert.notEqual(ps.code, 0);
  assert.equal((await hub.api('PATCH', '/api/v1/users/cust', { disabled: true })).status, 200);
  assert.equal((await asCustomer('GET', '/api/v1/me')).status, 401);
  assert.equal((await hub.api('PATCH', '/api/v1/users/cust', { disabled: false })).status, 200);
  assert.equal((await asCustomer('GET', '/api/v1/me')).json.scoped, true, '/me tells the UI the user is scoped');
  assert.equal((await hub.api('GET', '/api/v1/me')).json.scoped, undefined, 'absent for a fleet-wide principal');
});

test('tokens expire and show their last use; pending codes list without secrets and revoke', async () => {
  const made = await asCustomer('POST', '/api/v1/tokens', { name: 'ci', expiresInDays: 1 });
  assert.equal(made.status, 201);
  assert.ok(Date.parse(made.json.expiresAt) > Date.now());
  assert.equal((await hub.api('GET', '/api/v1/me', undefined, made.json.token)).status, 200);
  const listed = (await asCustomer('GET', '/api/v1/tokens')).json.find((t: { name: string }) => t.name === 'ci');
  assert.ok(listed.lastUsedAt, 'last use recorded');
  assert.equal(listed.expiresAt, made.json.expiresAt);
  // Expire it in the store, as time would.
  const db = new SqliteStore(join(hub.dataDir, DATABASE_FILE));
  try {
    await db.access.setTokenExpiry(hashToken(made.json.token), Date.now() - 1);
  } finally {
    await db.close();
  }
  const expired = await hub.api('GET', '/api/v1/me', undefined, made.json.token);
  assert.equal(expired.status, 401);
  assert.match(expired.json.error.message, /expired/);

  const code = await mintCode(hub, 'later-01');
  const pending = await hub.api('GET', '/api/v1/enrollments');
  const entry = pending.json.find((p: { node: string | null }) => p.node === 'later-01');
  assert.ok(entry);
  assert.doesNotMatch(JSON.stringify(pending.json), new RegExp(code.split('.').pop()!.slice(0, 12)));
  assert.equal((await hub.api('DELETE', `/api/v1/enrollments/${entry.id}`)).status, 200);
  const used = await hub.api('POST', '/api/v1/enroll', { code, publicKey: 'x' });
  assert.notEqual(used.status, 201);
  assert.equal((await asCustomer('GET', '/api/v1/enrollments')).status, 403);
});
