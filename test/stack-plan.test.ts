/** The stack planner, pure: desired project + what the engine holds → ordered, minimal steps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configHash, containerCreateBody } from '../src/agent/stacks/container-spec.ts';
import { dependencyOrder, planStack, type DesiredService, type ObservedContainer } from '../src/agent/stacks/plan-stack.ts';
import { project, service } from './support/stack-project.ts';

const IMG = 'sha256:aaaa';

function desiredOf(p: ReturnType<typeof project>, secrets: Record<string, string> = {}): Map<string, DesiredService> {
  return new Map(Object.keys(p.services).map((s) => [s, { hash: configHash(p, s, secrets), imageId: IMG }]));
}

function running(p: ReturnType<typeof project>, s: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return { id: `id-${s}`, name: `${p.name}_${s}_1`, service: s, number: 1, configHash: s in p.services ? configHash(p, s, {}) : 'gone', imageId: IMG, running: true, ...over };
}

test('services come in dependency order, and a cycle is refused with its path', () => {
  const p = project('shop', {
    web: service({ dependsOn: { api: { condition: 'service_healthy' } } }),
    api: service({ dependsOn: { db: { condition: 'service_healthy' } } }),
    db: service(),
  });
  assert.deepEqual(dependencyOrder(p), ['db', 'api', 'web']);
  const cyclic = project('loop', { a: service({ dependsOn: { b: { condition: 'service_started' } } }), b: service({ dependsOn: { a: { condition: 'service_started' } } }) });
  assert.throws(
    () => dependencyOrder(cyclic),
    (err: Error & { code?: string }) => err.code === 'validation_failed' && /cycle: a → b → a/.test(err.message),
  );
  const unknown = project('x', { a: service({ dependsOn: { nope: { condition: 'service_started' } } }) });
  assert.throws(() => dependencyOrder(unknown), /nope/);
});

test('a first deploy creates the default network and every service, numbered 1 in v1 style', () => {
  const p = project('shop', { web: service(), db: service() });
  const plan = planStack(p, desiredOf(p), { containers: [], networks: ['bridge'], volumes: [] });
  assert.deepEqual(plan.createNetworks, [{ key: 'default', name: 'shop_default' }]);
  assert.deepEqual(
    plan.services.map((s) => [s.service, s.action.kind, s.name]),
    [
      ['db', 'create', 'shop_db_1'],
      ['web', 'create', 'shop_web_1'],
    ],
  );
});

test('an unchanged running service is kept; a changed one is replaced start-first unless a name or host port is fixed', () => {
  const p = project('shop', {
    same: service(),
    free: service({ environment: { V: '2' } }),
    ported: service({ ports: [{ target: 80, published: 8080, hostIp: '127.0.0.1', protocol: 'tcp' }], environment: { V: '2' } }),
    named: service({ containerName: 'shop-named', environment: { V: '2' } }),
  });
  const observed = [running(p, 'same'), running(p, 'free', { configHash: 'old' }), running(p, 'ported', { configHash: 'old' }), running(p, 'named', { configHash: 'old', name: 'shop-named' })];
  const plan = planStack(p, desiredOf(p), { containers: observed, networks: ['shop_default'], volumes: [] });
  const byName = Object.fromEntries(plan.services.map((s) => [s.service, s]));
  assert.equal(byName.same!.action.kind, 'keep');
  assert.equal(byName.free!.action.kind, 'start-first');
  assert.equal(byName.free!.name, 'shop_free_2');
  assert.equal(byName.ported!.action.kind, 'stop-first');
  assert.deepEqual(byName.named!.action, { kind: 'stop-first', old: [observed[3]], renameOld: true });
  assert.equal(byName.named!.name, 'shop-named');
  assert.deepEqual(plan.createNetworks, []);
});

test('a stopped container or another image is not kept; a service gone from the project is removed', () => {
  const p = project('shop', { a: service(), b: service() });
  const plan = planStack(p, desiredOf(p), {
    containers: [running(p, 'a', { running: false }), running(p, 'b', { imageId: 'sha256:other' }), running(p, 'old', { configHash: 'x' })],
    networks: ['shop_default'],
    volumes: [],
  });
  assert.deepEqual(
    plan.services.map((s) => s.action.kind),
    ['start-first', 'start-first'],
  );
  assert.deepEqual(
    plan.removeContainers.map((c) => c.service),
    ['old'],
  );
});

test('the config-hash follows the config and the secret values, not the revision; secrets appear only in Env', () => {
  const p = project('shop', { a: service({ secretEnvironment: ['TOKEN'] }) });
  assert.equal(configHash(p, 'a', { TOKEN: 'x' }), configHash(structuredClone(p), 'a', { TOKEN: 'x' }));
  assert.notEqual(configHash(p, 'a', { TOKEN: 'x' }), configHash(p, 'a', { TOKEN: 'y' }));
  const changed = project('shop', { a: service({ secretEnvironment: ['TOKEN'], environment: { A: '1' } }) });
  assert.notEqual(configHash(p, 'a', {}), configHash(changed, 'a', {}));
  const body = containerCreateBody({ project: p, service: 'a', revision: 3, number: 1, hash: 'h', image: IMG, secretEnv: { TOKEN: 's3cret' }, workingDir: '/x' });
  assert.deepEqual(body.Env, ['TOKEN=s3cret']);
  const labels = body.Labels as Record<string, string>;
  assert.equal(labels['com.docker.compose.project'], 'shop');
  assert.equal(labels['com.docker.compose.oneoff'], 'False');
  assert.equal(labels['dockfleet.stack.revision'], '3');
  assert.ok(!JSON.stringify(labels).includes('s3cret'));
});

test('an ephemeral host port allows start-first; a service whose volumes are snapshotted always stops first', () => {
  const p = project('shop', {
    ephemeral: service({ ports: [{ target: 80, published: null, hostIp: '127.0.0.1', protocol: 'tcp' }], environment: { V: '2' } }),
    stateful: service({ labels: { 'dockfleet.snapshot-volumes': 'true' }, environment: { V: '2' } }),
  });
  const observed = [running(p, 'ephemeral', { configHash: 'old' }), running(p, 'stateful', { configHash: 'old' })];
  const plan = planStack(p, desiredOf(p), { containers: observed, networks: ['shop_default'], volumes: [] });
  const kinds = Object.fromEntries(plan.services.map((s) => [s.service, s.action]));
  assert.equal(kinds.ephemeral!.kind, 'start-first');
  assert.deepEqual(kinds.stateful, { kind: 'stop-first', old: [observed[1]], renameOld: false });
});
