/** Compose secrets and configs files, against a real private engine: a service reads its
 * secret file and its config file at their targets from its first instruction on; a changed
 * file replaces the container; the secret never reaches the job's log or the agent's state;
 * a host whose policy keeps container filesystems closed (`archive` off, the default) refuses
 * such a service before anything is created. */
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startStackRig, type StackRig } from './support/stack-rig.ts';
import { project, revision, service, shellCheck } from './support/stack-project.ts';
import type { StackApplier } from '../src/agent/stacks/stack-job-runner.ts';

let rig: StackRig;
let withArchive: StackApplier;

before(async () => {
  rig = await startStackRig('stacksecretfiles');
  withArchive = await rig.applierWith({
    sections: { ping: true, version: true, info: true, events: true, system: true, containers: true, exec: true, images: true, build: true, volumes: true, networks: true, archive: true },
  });
});
after(async () => {
  await rig?.close();
});

const SECRET = 'pa55-in-a-file-7f3e';
const b64 = (text: string): string => Buffer.from(text).toString('base64');

function app(config: string) {
  return project(
    'files',
    {
      api: service({
        // Reads both files as its first act: they must be there before it starts.
        command: ['sh', '-c', 'cat /run/secrets/api_key; echo; cat /etc/app/app.ini; stat -c "%a %u" /run/secrets/api_key; touch /tmp/ok; exec sleep 3600'],
        healthcheck: shellCheck('test -f /tmp/ok'),
        secrets: [{ source: 'api_key', target: 'api_key' }],
        configs: [{ source: 'app_ini', target: '/etc/app/app.ini' }],
      }),
    },
    { configs: { app_ini: b64(config) }, secretFiles: ['api_key'] },
  );
}

async function allFiles(dir: string): Promise<string> {
  let text = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) text += await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return text;
}

test('a service reads its secret file and its config file at their targets from its first instruction on', async () => {
  const { result, logs } = await rig.run('deploy', 'files', revision(app('[main]\nmode=one\n'), 1, { stableMs: 300 }), { files: { api_key: b64(SECRET) }, applier: withArchive });
  assert.equal(result.state, 'succeeded', result.error ?? '');
  const out = (await rig.stackEngine.logTail('files_api_1', 10)).join('\n');
  assert.equal(out, `${SECRET}\n[main]\nmode=one\n444 0`);
  assert.ok(!logs.join('\n').includes(SECRET), 'no secret in the job log');
  assert.ok(!(await allFiles(rig.stateDir)).includes(SECRET), 'no secret in the agent state dir');
});

test('a changed config file replaces the container', async () => {
  const before1 = await rig.containers('files');
  const { result } = await rig.run('deploy', 'files', revision(app('[main]\nmode=two\n'), 2, { stableMs: 300 }), { files: { api_key: b64(SECRET) }, applier: withArchive });
  assert.equal(result.state, 'succeeded', result.error ?? '');
  const after2 = await rig.containers('files');
  assert.notDeepEqual(
    Object.values(after2).map((c) => c.hash),
    Object.values(before1).map((c) => c.hash),
  );
  const name = Object.keys(after2)[0]!;
  assert.match((await rig.stackEngine.logTail(name, 10)).join('\n'), /mode=two/);
});

test('a host with the archive section off refuses a service with files before anything is created', async () => {
  const p = app('x=1\n');
  p.name = 'closed';
  const { result } = await rig.run('deploy', 'closed', revision(p, 1), { files: { api_key: b64(SECRET) } });
  assert.equal(result.state, 'failed');
  assert.equal(result.rolledBack, false);
  assert.match(result.error ?? '', /service api: its secrets and configs files are written into the container with PUT .*archive.*, and .*refuses/);
  assert.deepEqual(await rig.containers('closed'), {});
  assert.deepEqual(await rig.names('networks', 'closed'), []);
});

test('a secret the job does not carry fails the deploy before anything is created', async () => {
  const p = app('x=1\n');
  p.name = 'nokey';
  const { result } = await rig.run('deploy', 'nokey', revision(p, 1), { applier: withArchive });
  assert.equal(result.state, 'failed');
  assert.match(result.error ?? '', /service api: the job carries no contents for secret api_key/);
  assert.deepEqual(await rig.containers('nokey'), {});
});
