/** Volume snapshots, against a real private engine: a service labelled
 * dockfleet.snapshot-volumes=true has its named volumes copied before a deploy changes
 * anything, and a failed gate puts the copy back (files the failed revision wrote or removed
 * included) before the old container starts again. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { engineRequest } from './support/engines.ts';
import { startStackRig, type StackRig } from './support/stack-rig.ts';
import { project, revision, service } from './support/stack-project.ts';
import type { StackProject } from '../src/protocol/stacks.ts';

let rig: StackRig;

before(async () => {
  rig = await startStackRig('stacksnapshot');
});
after(async () => {
  await rig?.close();
});

const volumes: StackProject['volumes'] = { data: { name: 'vault_data', external: false, driver: null, driverOpts: {}, labels: {} } };
const mount = { type: 'volume' as const, source: 'data', target: '/data', readOnly: false };

/** Revision 1 writes its marker once (a restart keeps what the volume holds); revision 2
 * overwrites it, adds a file, removes one, and crashes. */
function vault(n: number) {
  const script =
    n === 1
      ? '[ -f /data/marker ] || { echo rev1 > /data/marker; echo keep > /data/keep; mkdir -p /data/sub; echo deep > /data/sub/file; chown 65534:65534 /data/sub/file; }; exec sleep 3600'
      : 'echo rev2 > /data/marker; echo junk > /data/junk; rm /data/keep; sleep 1; exit 3';
  return project(
    'vault',
    {
      db: service({ command: ['sh', '-c', script], mounts: [mount], labels: { 'dockfleet.snapshot-volumes': 'true' } }),
    },
    { volumes },
  );
}

/** A file's bytes and owner in a volume, read through a throwaway container (the test's own, not the applier's). */
async function readVolume(path: string): Promise<string> {
  const create = await engineRequest(rig.engine.socketPath, 'POST', '/containers/create', {
    Image: 'dockfleet-test/busybox:latest',
    Cmd: ['sh', '-c', `cat /v/${path} 2>&1; stat -c %u /v/${path} 2>&1; true`],
    HostConfig: { Mounts: [{ Type: 'volume', Source: 'vault_data', Target: '/v', ReadOnly: true }] },
  });
  assert.equal(create.status, 201, create.text);
  const id = create.json.Id as string;
  try {
    await engineRequest(rig.engine.socketPath, 'POST', `/containers/${id}/start`);
    await engineRequest(rig.engine.socketPath, 'POST', `/containers/${id}/wait`, undefined, { timeoutMs: 30_000 });
    const lines = await rig.stackEngine.logTail(id, 10);
    return lines.join('\n');
  } finally {
    await engineRequest(rig.engine.socketPath, 'DELETE', `/containers/${id}?force=1`);
  }
}

test("a failed gate restores the snapshot of a labelled service's volume before the old container starts again", async () => {
  const first = await rig.run('deploy', 'vault', revision(vault(1), 1, { stableMs: 500 }));
  assert.equal(first.result.state, 'succeeded', first.result.error ?? '');
  assert.match(await readVolume('marker'), /^rev1\n0$/);

  const { result, steps } = await rig.run('deploy', 'vault', revision(vault(2), 2, { stableMs: 2_000, deadlineMs: 20_000 }));
  assert.equal(result.state, 'failed');
  assert.equal(result.rolledBack, true);
  assert.equal(result.revision, 1);
  assert.ok(steps.includes('snapshot volumes'), steps.join(', '));
  assert.ok(steps.includes('service db: stop-first'), `a service whose volumes are snapshotted never runs twice: ${steps.join(', ')}`);

  assert.match(await readVolume('marker'), /^rev1\n0$/, "revision 1's marker is back");
  assert.match(await readVolume('keep'), /^keep\n0$/, 'a file revision 2 removed is back');
  assert.match(await readVolume('sub/file'), /^deep\n65534$/, 'owners are kept');
  assert.match(await readVolume('junk'), /No such file/, 'a file revision 2 added is gone');
  const containers = await rig.containers('vault');
  assert.deepEqual(Object.keys(containers), ['vault_db_1']);
  assert.equal(containers.vault_db_1?.state, 'running');

  const snaps = await engineRequest(rig.engine.socketPath, 'GET', `/volumes?filters=${encodeURIComponent(JSON.stringify({ label: ['dockfleet.snapshot.of=vault_data'] }))}`);
  assert.deepEqual(
    (snaps.json.Volumes as Array<{ Name: string; Labels: Record<string, string> }>).map((v) => [v.Name, v.Labels['dockfleet.snapshot.revision']]),
    [['vault_data_snapshot_r1', '1']],
  );
  const helpers = await engineRequest(rig.engine.socketPath, 'GET', `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: ['dockfleet.helper'] }))}`);
  assert.deepEqual(helpers.json, [], 'no helper container is left');
});

test('a later deploy keeps only the newest snapshot of each volume', async () => {
  const good = vault(1);
  good.services.db!.environment = { EPOCH: '3' };
  const { result } = await rig.run('deploy', 'vault', revision(good, 3, { stableMs: 500 }));
  assert.equal(result.state, 'succeeded', result.error ?? '');
  const again = structuredClone(good);
  again.services.db!.environment = { EPOCH: '4' };
  const next = await rig.run('deploy', 'vault', revision(again, 4, { stableMs: 500 }));
  assert.equal(next.result.state, 'succeeded', next.result.error ?? '');
  const snaps = await engineRequest(rig.engine.socketPath, 'GET', `/volumes?filters=${encodeURIComponent(JSON.stringify({ label: ['dockfleet.snapshot.of=vault_data'] }))}`);
  assert.deepEqual(
    (snaps.json.Volumes as Array<{ Name: string }>).map((v) => v.Name),
    ['vault_data_snapshot_r3'],
  );
  assert.match(await readVolume('marker'), /^rev1\n0$/, 'a passing deploy leaves the data as it is');
});
