/** Ingress labels → routes, without an engine: the grammar (good, malformed, indexed, unknown
 * keys, ports the container does not expose) and how the route table settles two containers
 * claiming one host and path (the one created first, whatever order they arrive in). */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { routesFromLabels } from '../src/hub/edge/route-labels.ts';
import { labelledIngressPorts } from '../src/protocol/ingress.ts';
import { bareHost, RouteTable } from '../src/hub/edge/route-table.ts';
import { InventoryCache } from '../src/hub/inventory-cache.ts';
import type { NodeRegistry } from '../src/hub/node-registry.ts';
import type { Store } from '../src/store/store.ts';
import type { Logger } from '../src/lib/logger.ts';

test('one unindexed route: defaults for path, protocol and access; the single exposed port', () => {
  const [r, ...rest] = routesFromLabels({ 'dockfleet.ingress.host': 'app.example.com', other: 'x' }, [8080]);
  assert.equal(rest.length, 0);
  assert.deepEqual(r, { index: '', host: 'app.example.com', path: '/', port: 8080, protocol: 'http', access: 'public', idleTimeout: null, error: null });
});

test('no ingress labels: no claims', () => {
  assert.deepEqual(routesFromLabels({ 'com.docker.compose.project': 'shop' }, [80]), []);
});

test('indexed routes are one claim each, in index order, beside the unindexed one', () => {
  const claims = routesFromLabels(
    {
      'dockfleet.ingress.2.host': 'b.example.com',
      'dockfleet.ingress.2.port': '9090',
      'dockfleet.ingress.2.protocol': 'h2c',
      'dockfleet.ingress.10.host': 'c.example.com',
      'dockfleet.ingress.10.port': '80',
      'dockfleet.ingress.10.access': 'users',
      'dockfleet.ingress.host': 'a.example.com',
      'dockfleet.ingress.port': '80',
      'dockfleet.ingress.path': '/api/',
    },
    [80, 9090],
  );
  assert.deepEqual(
    claims.map((c) => [c.index, c.host, c.path, c.port, c.protocol, c.access, c.error]),
    [
      ['', 'a.example.com', '/api', 80, 'http', 'public', null],
      ['2', 'b.example.com', '/', 9090, 'h2c', 'public', null],
      ['10', 'c.example.com', '/', 80, 'http', 'users', null],
    ],
  );
});

test('malformed values are errors on their claim, naming the label; the other claims stay good', () => {
  const bad = (labels: Record<string, string>, exposed: number[] | null = [80]): string => {
    const claims = routesFromLabels({ 'dockfleet.ingress.1.host': 'ok.example.com', 'dockfleet.ingress.1.port': '80', ...labels }, exposed);
    assert.equal(claims.find((c) => c.index === '1')?.error, null, 'the good claim stays good');
    const claim = claims.find((c) => c.index === '');
    assert.ok(claim?.error, `expected an error for ${JSON.stringify(labels)}`);
    return claim.error;
  };
  assert.match(bad({ 'dockfleet.ingress.host': 'App.Example.com' }), /dockfleet\.ingress\.host: .*lowercase/);
  assert.match(bad({ 'dockfleet.ingress.host': '*.example.com' }), /dockfleet\.ingress\.host/);
  assert.match(bad({ 'dockfleet.ingress.host': 'a.example.com:8443' }), /dockfleet\.ingress\.host/);
  assert.match(bad({ 'dockfleet.ingress.host': '-a.example.com' }), /dockfleet\.ingress\.host/);
  assert.match(bad({ 'dockfleet.ingress.port': '80' }), /dockfleet\.ingress\.host is missing/);
  for (const port of ['0', '65536', '08', '80a', '', '-1']) {
    assert.match(bad({ 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.port': port }), /dockfleet\.ingress\.port: .* is not a port/);
  }
  for (const path of ['api', '/a/../b', '/a b', '/a\u0000', '/a?x', '/a//b', '/./a']) {
    assert.match(bad({ 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.path': path }), /dockfleet\.ingress\.path: /);
  }
  assert.match(bad({ 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.protocol': 'grpc' }), /dockfleet\.ingress\.protocol: "grpc" is not one of http, h2c, https/);
  assert.match(bad({ 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.access': 'Everyone!' }), /dockfleet\.ingress\.access/);
});

test('a port the container does not expose is an error; a stopped container (exposure unknown) is taken on trust', () => {
  const labels = { 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.port': '8080' };
  assert.match(routesFromLabels(labels, [80])[0]?.error ?? '', /does not expose 8080\/tcp \(exposes 80\/tcp\)/);
  assert.match(routesFromLabels(labels, [])[0]?.error ?? '', /exposes no port/);
  assert.equal(routesFromLabels(labels, null)[0]?.error, null);
  assert.match(routesFromLabels({ 'dockfleet.ingress.host': 'a.example.com' }, [80, 443])[0]?.error ?? '', /port is missing .* 80\/tcp, 443\/tcp: say which/);
  const unknown = routesFromLabels({ 'dockfleet.ingress.host': 'a.example.com' }, null)[0];
  assert.deepEqual([unknown?.port, unknown?.error], [null, null], 'a stopped container keeps its route; the port is settled when it runs');
});

test('an unknown dockfleet.ingress key is an error, never ignored', () => {
  const typo = routesFromLabels({ 'dockfleet.ingress.host': 'a.example.com', 'dockfleet.ingress.prot': '80' }, [80]);
  assert.equal(typo.length, 1);
  assert.match(typo[0]?.error ?? '', /unknown label dockfleet\.ingress\.prot/);
  const alone = routesFromLabels({ 'dockfleet.ingress.hostname': 'a.example.com' }, [80]);
  assert.equal(alone.length, 1, 'a container whose only ingress label is a typo still shows up');
  assert.match(alone[0]?.error ?? '', /unknown label dockfleet\.ingress\.hostname/);
  for (const key of ['dockfleet.ingress.01.host', 'dockfleet.ingress.1.2.host', 'dockfleet.ingress.100.host', 'dockfleet.ingress.']) {
    assert.match(routesFromLabels({ [key]: 'a.example.com' }, [80])[0]?.error ?? '', /unknown label/, key);
  }
});

test('host matching: lowercase, without port or trailing dot', () => {
  assert.equal(bareHost('App.Example.COM:8443'), 'app.example.com');
  assert.equal(bareHost('app.example.com.'), 'app.example.com');
  assert.equal(bareHost('[::1]:443'), '[::1]');
});

// --- the table, over a real InventoryCache and a stand-in for the registry's node records ---

const quiet = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return quiet;
  },
} as unknown as Logger;
const noStore = {
  async loadInventory() {
    return [];
  },
  async saveInventory() {},
} as unknown as Store;

function fakeRegistry(nodes: Array<{ id: string; name: string; online: boolean }>): NodeRegistry {
  const registry = new EventEmitter() as EventEmitter & Record<string, unknown>;
  const byId = (id: string) => nodes.find((n) => n.id === id) ?? null;
  Object.assign(registry, {
    list: () => nodes.map((n) => ({ name: n.name })),
    byName: (name: string) => nodes.find((n) => n.name === name) ?? null,
    byId: (id: string) => {
      const n = byId(id);
      return n && { ...n, state: 'active' };
    },
    status: (n: { id: string }) => (byId(n.id)?.online ? 'online' : 'offline'),
  });
  return registry as unknown as NodeRegistry;
}

function container(id: string, name: string, created: number, labels: Record<string, string>, state = 'running'): unknown {
  return { Id: id, Names: [`/${name}`], Created: created, State: state, Labels: labels, Ports: [{ PrivatePort: 80, Type: 'tcp' }] };
}

test('two containers claiming one host+path: the one created first wins, in either arrival order; other routes unaffected', () => {
  const labels = { 'dockfleet.ingress.host': 'shop.example.com' };
  for (const order of ['older-first', 'newer-first']) {
    const inventory = new InventoryCache(noStore, quiet);
    const nodes = [
      { id: 'n1', name: 'alpha', online: true },
      { id: 'n2', name: 'beta', online: false },
    ];
    const table = new RouteTable(fakeRegistry(nodes), inventory);
    const older = container('b'.repeat(64), 'older', 1_000, labels);
    const newer = container('a'.repeat(64), 'newer', 2_000, { ...labels, 'dockfleet.ingress.1.host': 'other.example.com' });
    if (order === 'older-first') {
      inventory.setSection('n2', 'containers', [older], 1);
      inventory.setSection('n1', 'containers', [newer], 2);
    } else {
      inventory.setSection('n1', 'containers', [newer], 1);
      inventory.setSection('n2', 'containers', [older], 2);
    }
    const m = table.match('SHOP.example.com:443', '/cart?x=1');
    assert.equal(m?.target.containerName, 'older', order);
    assert.equal(m?.target.node, 'beta');
    assert.equal(m?.target.nodeOnline, false, 'an offline node keeps its route, marked offline');
    assert.equal(table.match('other.example.com', '/')?.target.containerName, 'newer', 'the loser keeps its other route');
    const loser = table.list().find((r) => r.container === 'newer' && r.host === 'shop.example.com');
    assert.equal(loser?.error, 'conflict: shop.example.com/ already served by beta/older');
    assert.equal(table.list().find((r) => r.container === 'older')?.error, null);
    // The winner goes away: the other claim takes over.
    inventory.setSection('n2', 'containers', [], 3);
    assert.equal(table.match('shop.example.com', '/')?.target.containerName, 'newer');
    table.close();
  }
});

test('claims made in the same second (the list has whole seconds) are settled by container ID, the same on every hub', () => {
  const labels = { 'dockfleet.ingress.host': 'tie.example.com' };
  for (const order of [0, 1]) {
    const inventory = new InventoryCache(noStore, quiet);
    const table = new RouteTable(fakeRegistry([{ id: 'n1', name: 'alpha', online: true }]), inventory);
    const pair = [container('f'.repeat(64), 'later-id', 5, labels), container('0'.repeat(64), 'earlier-id', 5, labels)];
    inventory.setSection('n1', 'containers', order === 0 ? pair : pair.reverse(), 1);
    assert.equal(table.match('tie.example.com', '/')?.target.containerName, 'earlier-id');
    table.close();
  }
});

test('longest path prefix wins, by whole segments; a stopped container keeps its route with running false', () => {
  const inventory = new InventoryCache(noStore, quiet);
  const table = new RouteTable(fakeRegistry([{ id: 'n1', name: 'alpha', online: true }]), inventory);
  inventory.setSection(
    'n1',
    'containers',
    [
      container('1'.repeat(64), 'root', 1, { 'dockfleet.ingress.host': 'x.example.com' }),
      container('2'.repeat(64), 'api', 2, { 'dockfleet.ingress.host': 'x.example.com', 'dockfleet.ingress.path': '/api' }, 'exited'),
    ],
    1,
  );
  assert.equal(table.match('x.example.com', '/api/v1')?.target.containerName, 'api');
  assert.equal(table.match('x.example.com', '/api')?.target.running, false);
  assert.equal(table.match('x.example.com', '/apiary')?.target.containerName, 'root');
  assert.equal(table.match('y.example.com', '/'), null);
  table.close();
});

test("the agent's rule for which ports labels publish agrees with every valid route the hub reads from the same labels", () => {
  const cases: Array<[Record<string, string>, number[]]> = [
    [{ 'dockfleet.ingress.host': 'a.test', 'dockfleet.ingress.port': '8080' }, [8080, 22]],
    [{ 'dockfleet.ingress.host': 'a.test' }, [3000]],
    [{ 'dockfleet.ingress.host': 'a.test' }, [3000, 4000]],
    [{ 'dockfleet.ingress.1.host': 'a.test', 'dockfleet.ingress.1.port': '81', 'dockfleet.ingress.2.host': 'b.test' }, [9000]],
    [{ 'dockfleet.ingress.host': 'a.test', 'dockfleet.ingress.port': '99999' }, [80]],
    [{ 'dockfleet.ingress.port': '7000' }, [7000]],
  ];
  for (const [labels, exposed] of cases) {
    const published = labelledIngressPorts(labels, exposed);
    for (const claim of routesFromLabels(labels, exposed)) {
      if (claim.error === null && claim.port !== null) assert.ok(published.includes(claim.port), `${JSON.stringify(labels)}: ${claim.port} in ${published}`);
    }
    // Never more than the labels name, plus the one exposed port a host-only route falls back to.
    for (const port of published) assert.ok(Object.values(labels).includes(String(port)) || (exposed.length === 1 && port === exposed[0]), `${port}`);
  }
  assert.deepEqual(labelledIngressPorts({ 'dockfleet.ingress.host': 'a.test' }, [3000, 4000]), []);
  assert.deepEqual(labelledIngressPorts({ other: '80' }, [80]), []);
});
