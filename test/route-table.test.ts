/** Routes from labels end to end: a real hub, a real agent and a private engine. A container
 * started with ingress labels shows in `GET /api/v1/routes` (and the edge's table) within a
 * second; stopping it keeps the route, marked not running; removing it removes the route; a
 * second container claiming the same host+path is listed with its conflict while the first keeps
 * the route; label mistakes are listed, never only logged; the node going offline is shown. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { RouteView } from '../src/protocol/ingress.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';

const NODE = 'edge-01';
let engine: TestEngine;
let hub: TestHub;
let agent: TestAgent;
let work: string;

async function routes(): Promise<RouteView[]> {
  const res = await hub.api('GET', '/api/v1/routes');
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json as RouteView[];
}

async function routeOf(container: string, host?: string): Promise<RouteView | undefined> {
  return (await routes()).find((r) => r.container === container && (host === undefined || r.host === host));
}

function exposing(...ports: number[]): Record<string, unknown> {
  return { ExposedPorts: Object.fromEntries(ports.map((p) => [`${p}/tcp`, {}])) };
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'routes' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-routes-'));
  hub = await startTestHub();
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, NODE), name: NODE, docker: engine.dockerHost, stateDir: join(work, 'agent') });
  await agent.waitConnected();
  await waitFor(() => hub.hub.inventory.section(hub.hub.registry.require(NODE).id, 'containers'), 10_000, 'first containers section');
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (work) await rm(work, { recursive: true, force: true });
});

test('a container started with labels is routable within a second; stopped it stays, marked; removed it is gone', async () => {
  const started = Date.now();
  const id = await runContainer(engine, {
    name: 'shop',
    config: exposing(8080),
    labels: {
      'dockfleet.ingress.host': 'shop.example.test',
      'dockfleet.ingress.1.host': 'api.example.test',
      'dockfleet.ingress.1.path': '/v1',
      'dockfleet.ingress.1.port': '8080',
      'dockfleet.ingress.1.protocol': 'h2c',
    },
  });
  // Listed from create on (not running, port unknown); served once the list shows it running.
  const route = await waitFor(
    async () => {
      const r = await routeOf('shop', 'shop.example.test');
      return r?.running && r;
    },
    1_000,
    'the running route in GET /api/v1/routes',
  );
  const tookMs = Date.now() - started;
  assert.deepEqual(route, {
    host: 'shop.example.test',
    path: '/',
    node: NODE,
    container: 'shop',
    port: 8080,
    access: 'public',
    protocol: 'http',
    running: true,
    nodeOnline: true,
    tls: { state: 'none', notAfter: null, error: null },
    error: null,
  });
  assert.equal((await routeOf('shop', 'api.example.test'))?.protocol, 'h2c');
  const match = hub.hub.routes.match('API.example.test:443', '/v1/items');
  assert.deepEqual(match?.target, { node: NODE, containerId: id, containerName: 'shop', port: 8080, protocol: 'h2c', access: 'public', idleTimeout: null, running: true, nodeOnline: true });
  process.stderr.write(`label → route in GET /api/v1/routes: ${tookMs} ms from create (create, start, engine event, agent, hub)\n`);

  assert.equal((await engineRequest(engine.socketPath, 'POST', `/containers/${id}/stop?t=1`)).status, 204);
  await waitFor(async () => (await routeOf('shop', 'shop.example.test'))?.running === false, 2_000, 'running: false after stop');
  const stopped = await routeOf('shop', 'shop.example.test');
  assert.equal(stopped?.error, null, 'a stopped container keeps its route (the edge answers 503), no error');
  assert.equal(stopped?.port, 8080, 'the exposed port seen while it ran is remembered');
  assert.equal(hub.hub.routes.match('shop.example.test', '/')?.target.running, false);

  assert.equal((await engineRequest(engine.socketPath, 'DELETE', `/containers/${id}`)).status, 204);
  await waitFor(async () => (await routeOf('shop')) === undefined, 2_000, 'the route gone after removal');
  assert.equal(hub.hub.routes.match('shop.example.test', '/'), null);
});

test('a second container claiming one host+path shows its conflict; the first keeps the route; mistakes are listed', async () => {
  const labels = { 'dockfleet.ingress.host': 'blog.example.test' };
  const first = await runContainer(engine, { name: 'blog-a', config: exposing(80), labels });
  await waitFor(() => routeOf('blog-a'), 2_000, 'the first claim');
  // The list's Created has whole seconds: the second claim is made a second later, so it is the younger.
  const createdA = Date.parse(String((await engineRequest(engine.socketPath, 'GET', `/containers/${first}/json`)).json.Created));
  await new Promise((r) => setTimeout(r, Math.max(0, (Math.floor(createdA / 1000) + 1) * 1000 - Date.now() + 50)));
  const second = await runContainer(engine, { name: 'blog-b', config: exposing(80), labels: { ...labels, 'dockfleet.ingress.1.host': 'other.example.test' } });
  const typo = await runContainer(engine, { name: 'typo', config: exposing(80, 443), labels: { 'dockfleet.ingress.host': 'typo.example.test' } });
  const wrongPort = await runContainer(engine, { name: 'wrong-port', config: exposing(80), labels: { 'dockfleet.ingress.host': 'wp.example.test', 'dockfleet.ingress.port': '9999' } });

  const loser = await waitFor(
    async () => {
      const r = await routeOf('blog-b', 'blog.example.test');
      return r?.running && r;
    },
    2_000,
    'the second claim',
  );
  assert.equal(loser.error, `conflict: blog.example.test/ already served by ${NODE}/blog-a`);
  assert.equal((await routeOf('blog-a'))?.error, null);
  assert.equal(hub.hub.routes.match('blog.example.test', '/')?.target.containerId, first);
  assert.equal((await routeOf('blog-b', 'other.example.test'))?.error, null, "the loser's other route is unaffected");
  assert.match((await waitFor(async () => (await routeOf('typo'))?.error, 2_000, 'typo')) ?? '', /port is missing .*80\/tcp, 443\/tcp/);
  assert.match((await waitFor(async () => (await routeOf('wrong-port'))?.error, 2_000, 'wrong-port')) ?? '', /does not expose 9999\/tcp/);
  assert.equal(hub.hub.routes.match('wp.example.test', '/'), null, 'a route with a mistake is not served');

  // The CLI shows the same, as CONTRACT.md's JSON array.
  const cli = spawnDockfleet(['routes', '--json', '--data', hub.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await cli.exited;
  assert.equal(code, 0, cli.stderr());
  const listed = JSON.parse(cli.stdout()) as Array<Record<string, unknown>>;
  const conflict = listed.find((r) => r.container === 'blog-b' && r.host === 'blog.example.test');
  assert.deepEqual(Object.keys(conflict ?? {}), ['host', 'path', 'node', 'container', 'port', 'access', 'tls', 'error']);
  assert.match(String(conflict?.error), /^conflict: /);

  // The winner goes: the other claim takes the route.
  await engineRequest(engine.socketPath, 'DELETE', `/containers/${first}?force=1`);
  await waitFor(async () => (await routeOf('blog-b', 'blog.example.test'))?.error === null, 2_000, 'the second claim served after the first is gone');
  assert.equal(hub.hub.routes.match('blog.example.test', '/')?.target.containerId, second);
  for (const c of [second, typo, wrongPort]) await engineRequest(engine.socketPath, 'DELETE', `/containers/${c}?force=1`);
});

test('a node going offline keeps its routes, marked offline', async () => {
  await runContainer(engine, { name: 'late', config: exposing(80), labels: { 'dockfleet.ingress.host': 'late.example.test' } });
  await waitFor(async () => (await routeOf('late'))?.nodeOnline === true, 2_000, 'the route online');
  await agent.stop();
  await waitFor(async () => (await routeOf('late'))?.nodeOnline === false, 12_000, 'nodeOnline: false');
  assert.equal(hub.hub.routes.match('late.example.test', '/')?.target.nodeOnline, false);
});
