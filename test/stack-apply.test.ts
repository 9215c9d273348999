/** The agent applies a stack through the Engine API, against a real private engine: a stack
 * with depends_on service_healthy comes up healthy and docker-compose v1 sees it as its own; a
 * service the host policy refuses, a missing image and a name clash fail before anything is
 * created; remove takes it away. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { run } from './support/docker-cli.ts';
import { BUSYBOX_IMAGE, runContainer } from './support/engines.ts';
import { startStackRig, type StackRig } from './support/stack-rig.ts';
import { project, revision, service, shellCheck } from './support/stack-project.ts';

let rig: StackRig;

before(async () => {
  rig = await startStackRig('stackapply');
});
after(async () => {
  await rig?.close();
});

const shop = project('shop', {
  db: service({ command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600'], healthcheck: shellCheck('test -f /tmp/ready') }),
  api: service({
    command: ['sh', '-c', 'echo api up; touch /tmp/ready; exec sleep 3600'],
    healthcheck: shellCheck('test -f /tmp/ready'),
    dependsOn: { db: { condition: 'service_healthy' } },
    environment: { MODE: 'prod' },
    secretEnvironment: ['API_TOKEN'],
  }),
  web: service({ dependsOn: { api: { condition: 'service_healthy' } }, labels: { tier: 'front' } }),
});

test('a 3-service stack with depends_on service_healthy comes up healthy, with Compose labels v1 reads', async () => {
  const { result, logs } = await rig.run('deploy', 'shop', revision(shop, 1), { secrets: { API_TOKEN: 'tok-s3cret' } });
  assert.equal(result.state, 'succeeded', result.error ?? '');
  assert.equal(result.revision, 1);
  assert.ok(!logs.join('\n').includes('tok-s3cret'), 'no secret value in job logs');
  const containers = await rig.containers('shop');
  assert.deepEqual(Object.keys(containers).sort(), ['shop_api_1', 'shop_db_1', 'shop_web_1']);
  assert.ok(Object.values(containers).every((c) => c.state === 'running'));
  assert.deepEqual(await rig.names('networks', 'shop'), ['shop_default']);
  const desired = await rig.state.read('shop', 'desired');
  assert.equal(desired?.state, 'healthy');
  assert.ok(!JSON.stringify(desired).includes('tok-s3cret'), 'no secret value in desired.json');

  // Debian's docker-compose v1, with the same file, on the host's engine.
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-compose-'));
  try {
    await writeFile(join(dir, 'docker-compose.yml'), ["version: '3.8'", 'services:', ...['db', 'api', 'web'].flatMap((s) => [`  ${s}:`, `    image: ${BUSYBOX_IMAGE}`])].join('\n'));
    const ps = await run('docker-compose', ['-p', 'shop', 'ps'], { DOCKER_HOST: rig.engine.dockerHost }, { cwd: dir });
    assert.equal(ps.code, 0, ps.stderr);
    for (const name of ['shop_api_1', 'shop_db_1', 'shop_web_1']) assert.match(ps.stdout, new RegExp(`${name}\\s.*Up`), ps.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // The same revision again changes nothing: every container is kept.
  const again = await rig.run('deploy', 'shop', revision(shop, 1), { secrets: { API_TOKEN: 'tok-s3cret' } });
  assert.equal(again.result.state, 'succeeded', again.result.error ?? '');
  assert.deepEqual(await rig.containers('shop'), containers);
});

test('a service the host policy refuses fails the job before anything is created', async () => {
  const p = project('refused', { ok: service(), bad: service({ capAdd: ['SYS_ADMIN'] }) });
  const { result } = await rig.run('deploy', 'refused', revision(p, 1));
  assert.equal(result.state, 'failed');
  assert.equal(result.rolledBack, false);
  assert.match(result.error ?? '', /service bad: dockfleet policy on this host refuses .*SYS_ADMIN/);
  assert.deepEqual(await rig.containers('refused'), {});
  assert.deepEqual(await rig.names('networks', 'refused'), []);
});

test('an image missing on the host with no registry reachable fails cleanly', async () => {
  const p = project('noimage', { ok: service(), gone: service({ image: '127.0.0.1:1/nowhere/none:1' }) });
  const { result } = await rig.run('deploy', 'noimage', revision(p, 1));
  assert.equal(result.state, 'failed');
  assert.match(result.error ?? '', /service gone: image 127\.0\.0\.1:1\/nowhere\/none:1 is not on this host and could not be pulled/);
  assert.deepEqual(await rig.containers('noimage'), {});
  assert.deepEqual(await rig.names('networks', 'noimage'), []);
});

test('a name clash with a container outside the stack fails cleanly and leaves that container alone', async () => {
  const outsider = await runContainer(rig.engine, { name: 'clash-fixed' });
  const p = project('clash', { a: service(), b: service({ containerName: 'clash-fixed' }) });
  const { result } = await rig.run('deploy', 'clash', revision(p, 1));
  assert.equal(result.state, 'failed');
  assert.match(result.error ?? '', /container name clash-fixed is taken by a container outside this stack/);
  assert.deepEqual(await rig.containers('clash'), {});
  const still = await rig.stackEngine.inspect('containers', 'clash-fixed');
  assert.equal(still?.Id, outsider);
  assert.equal(still?.State?.Status, 'running');
});

test('remove takes the containers and networks away and keeps named volumes', async () => {
  const p = project(
    'gone',
    { a: service({ mounts: [{ type: 'volume', source: 'data', target: '/data', readOnly: false }] }) },
    {
      volumes: { data: { name: 'gone_data', external: false, driver: null, driverOpts: {}, labels: {} } },
    },
  );
  const deployed = await rig.run('deploy', 'gone', revision(p, 1));
  assert.equal(deployed.result.state, 'succeeded', deployed.result.error ?? '');
  assert.deepEqual(await rig.names('volumes', 'gone'), ['gone_data']);
  const { result } = await rig.run('remove', 'gone', null);
  assert.equal(result.state, 'succeeded', result.error ?? '');
  assert.deepEqual(await rig.containers('gone'), {});
  assert.deepEqual(await rig.names('networks', 'gone'), []);
  assert.deepEqual(await rig.names('volumes', 'gone'), ['gone_data']);
  assert.equal((await rig.state.read('gone', 'desired'))?.state, 'removed');
});

test('drift: a stack container removed or added by hand is reported within 10 s, and a deploy reconciles it', async () => {
  const { DriftWatcher } = await import('../src/agent/stacks/drift-watch.ts');
  const p = project('drifty', { a: service(), b: service() });
  const rev = revision(p, 1, { stableMs: 300 });
  assert.equal((await rig.run('deploy', 'drifty', rev)).result.state, 'succeeded');
  // A long period: only the engine's events can make the watcher look within 10 s.
  const watcher = new DriftWatcher(rig.stackEngine, rig.state, { periodMs: 600_000 });
  const stop = new AbortController();
  const running = watcher.run(stop.signal);
  const stateOf = () => watcher.status.stacks.find((s) => s.stack === 'drifty');
  const waitFor = async (ok: () => boolean, what: string): Promise<number> => {
    const t0 = Date.now();
    while (!ok()) {
      assert.ok(Date.now() - t0 < 10_000, `${what} not reported within 10 s: ${JSON.stringify(stateOf())}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - t0;
  };
  try {
    await waitFor(() => stateOf()?.state === 'healthy', 'the healthy stack');
    await rig.stackEngine.must('DELETE', '/containers/drifty_a_1?force=1');
    await waitFor(() => stateOf()?.state === 'drifted' && stateOf()!.drift.some((d) => d.kind === 'missing' && d.service === 'a'), 'the missing container');
    await runContainer(rig.engine, { name: 'drifty_extra', labels: { 'com.docker.compose.project': 'drifty', 'com.docker.compose.service': 'x' } });
    await waitFor(() => stateOf()!.drift.some((d) => d.kind === 'added' && d.container === 'drifty_extra'), 'the added container');
    await rig.stackEngine.must('DELETE', '/containers/drifty_extra?force=1');
    assert.equal((await rig.run('deploy', 'drifty', rev)).result.state, 'succeeded');
    await waitFor(() => stateOf()?.state === 'healthy' && stateOf()!.drift.length === 0, 'the reconciled stack');
  } finally {
    stop.abort();
    await running;
  }
});
