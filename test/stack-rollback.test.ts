/** Health-gated deploys with whole-stack rollback, against a real private engine: a healthcheck
 * that never passes, a crash loop and a taken port each end with the host back on the previous
 * revision, container for container; a rollback job returns to the host's snapshot; an apply
 * cut short by a crash is finished when the job runs again. */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { runContainer } from './support/engines.ts';
import { startStackRig, type StackRig } from './support/stack-rig.ts';
import { project, revision, service, shellCheck } from './support/stack-project.ts';
import type { StackService } from '../src/protocol/stacks.ts';

let rig: StackRig;
let port: number;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port: p } = server.address() as { port: number };
      server.close(() => resolve(p));
    });
  });
}

before(async () => {
  rig = await startStackRig('stackrollback');
  port = await freePort();
});
after(async () => {
  await rig?.close();
});

/** Revision N of "app": a start-first service, a stop-first one on a host port, one with a fixed name. */
function app(n: number, over: { b?: Partial<StackService>; a?: Partial<StackService> } = {}) {
  return project('app', {
    a: service({ environment: { REV: String(n) }, ...over.a }),
    b: service({
      command: ['sh', '-c', `echo b rev${n} booting; touch /tmp/ok; exec sleep 3600`],
      ports: [{ target: 80, published: port, hostIp: '127.0.0.1', protocol: 'tcp' }],
      healthcheck: shellCheck('test -f /tmp/ok'),
      ...over.b,
    }),
    c: service({ containerName: 'app-fixed', environment: { REV: String(n) } }),
  });
}

async function deployed(n: number) {
  const { result } = await rig.run('deploy', 'app', revision(app(n), n, { stableMs: 500, deadlineMs: 30_000 }));
  assert.equal(result.state, 'succeeded', result.error ?? '');
  return rig.containers('app');
}

test('a healthcheck that never passes rolls the whole stack back to the previous revision, with the failing log lines', async () => {
  const before1 = await deployed(1);
  assert.deepEqual(Object.keys(before1).sort(), ['app-fixed', 'app_a_1', 'app_b_1']);
  const bad = app(2, { b: { healthcheck: shellCheck('test -f /tmp/never', 2) } });
  const { result } = await rig.run('deploy', 'app', revision(bad, 2, { stableMs: 500, deadlineMs: 20_000 }));
  assert.equal(result.state, 'failed');
  assert.equal(result.rolledBack, true);
  assert.equal(result.revision, 1);
  assert.match(result.error ?? '', /service b failed the health gate: its healthcheck reports unhealthy/);
  assert.match(result.error ?? '', /last log lines of b:\nb rev2 booting/);
  assert.deepEqual(await rig.containers('app'), before1, 'the same containers, same config-hash, running again');
  assert.equal((await rig.state.read('app', 'desired'))?.revision.revision, 1);
  assert.equal(await rig.state.read('app', 'journal'), null);
});

test('a crash loop fails the gate at once, long before the deadline', async () => {
  const before1 = await rig.containers('app');
  const looping = app(3, { a: { restart: 'always', command: ['sh', '-c', 'echo crashing; exit 3'] } });
  const t0 = Date.now();
  const { result } = await rig.run('deploy', 'app', revision(looping, 3, { stableMs: 500, deadlineMs: 120_000 }));
  const took = Date.now() - t0;
  assert.equal(result.state, 'failed');
  assert.match(result.error ?? '', /service a failed the health gate: its container (is restarting|exited)/);
  assert.match(result.error ?? '', /crashing/);
  // Half the deadline at most, deploy and rollback included (28 s once beside the suite's load).
  assert.ok(took < 60_000, `failed after ${took} ms, against a 120 s deadline`);
  assert.deepEqual(await rig.containers('app'), before1);
});

test('a host port already taken fails the deploy and leaves the old revision', async () => {
  const before1 = await rig.containers('app');
  const taken = await freePort();
  const holder = await runContainer(rig.engine, {
    name: 'port-holder',
    hostConfig: { PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(taken) }] } },
    config: { ExposedPorts: { '80/tcp': {} } },
  });
  try {
    const moved = app(4, { b: { ports: [{ target: 80, published: taken, hostIp: '127.0.0.1', protocol: 'tcp' }] } });
    const { result } = await rig.run('deploy', 'app', revision(moved, 4));
    assert.equal(result.state, 'failed');
    assert.equal(result.rolledBack, true);
    assert.match(result.error ?? '', /service b could not start: .*(allocated|in use)/);
    assert.deepEqual(await rig.containers('app'), before1);
  } finally {
    await rig.stackEngine.call('DELETE', `/containers/${holder}?force=1`);
  }
});

test('a rollback job returns to the snapshot of the previous revision', async () => {
  const rev1 = await rig.containers('app');
  const rev5 = await deployed(5);
  assert.notDeepEqual(
    Object.values(rev5)
      .map((c) => c.hash)
      .sort(),
    Object.values(rev1)
      .map((c) => c.hash)
      .sort(),
  );
  assert.equal((await rig.state.read('app', 'snapshot'))?.revision.revision, 1);
  const { result } = await rig.run('rollback', 'app', null);
  assert.equal(result.state, 'succeeded', result.error ?? '');
  assert.equal(result.revision, 1);
  const hashes = (c: Record<string, { hash: string; service: string }>) =>
    Object.values(c)
      .map((x) => `${x.service}:${x.hash}`)
      .sort();
  assert.deepEqual(hashes(await rig.containers('app')), hashes(rev1));
});

test('an apply cut short by a crash is finished when the job runs again', async () => {
  const before1 = await rig.containers('app');
  const next = revision(app(6), 6, { stableMs: 500, deadlineMs: 30_000 });
  // The "crash": the agent stops answering at the gate, with the old containers set aside.
  void rig.run('deploy', 'app', next, { ctx: { step: (name, run) => (name === 'health gate' ? new Promise(() => {}) : run()) } });
  const deadline = Date.now() + 30_000;
  while (!Object.keys(await rig.containers('app')).some((n) => n.endsWith('_dfold_6'))) {
    assert.ok(Date.now() < deadline, 'the interrupted apply never set the fixed-name container aside');
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1_000));
  assert.notEqual(await rig.state.read('app', 'journal'), null);
  const { result, logs } = await rig.run('deploy', 'app', next, { ctx: { resumed: true } });
  assert.equal(result.state, 'succeeded', result.error ?? '');
  assert.ok(logs.some((l) => /cut short/.test(l)));
  const after6 = await rig.containers('app');
  assert.deepEqual(
    Object.keys(after6).filter((n) => n.includes('dfold')),
    [],
  );
  assert.equal(Object.keys(after6).length, 3);
  assert.ok(Object.values(after6).every((c) => c.state === 'running'));
  assert.notDeepEqual(after6, before1);
});

test('a first deploy that fails leaves nothing running and the stack reads failed on revision 0; the next good deploy is a first deploy', async () => {
  const { DriftWatcher } = await import('../src/agent/stacks/drift-watch.ts');
  const broken = project('fresh', { a: service({ restart: 'always', command: ['sh', '-c', 'exit 4'] }) });
  const { result } = await rig.run('deploy', 'fresh', revision(broken, 1, { stableMs: 500 }));
  assert.equal(result.state, 'failed');
  assert.equal(result.rolledBack, false, 'there was nothing to roll back to');
  assert.equal(result.revision, 0);
  assert.deepEqual(await rig.containers('fresh'), {});
  const watcher = new DriftWatcher(rig.stackEngine, rig.state);
  await watcher.check();
  const seen = watcher.status.stacks.find((s) => s.stack === 'fresh');
  assert.deepEqual(seen && { revision: seen.revision, state: seen.state, drift: seen.drift }, { revision: 0, state: 'failed', drift: [] });

  const good = project('fresh', { a: service() });
  const next = await rig.run('deploy', 'fresh', revision(good, 2, { stableMs: 300 }));
  assert.equal(next.result.state, 'succeeded', next.result.error ?? '');
  assert.equal(await rig.state.read('fresh', 'snapshot'), null, 'no snapshot of a revision the host never ran');
  await watcher.check();
  assert.equal(watcher.status.stacks.find((s) => s.stack === 'fresh')?.state, 'healthy');
});
