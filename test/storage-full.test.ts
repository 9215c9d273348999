/** When the hub cannot write its audit log (its disk is full), changes are refused with
 * storage_full, in Docker's error format for the CLI, and nothing happens on the host; reads go
 * on. The hub's data dir sits on a 4 MiB tmpfs that the test fills. Needs root (mount). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { hubRequest } from './support/hub-request.ts';

let engines: TestEngine[];
let work: string;
let mountPoint: string;
let mounted = false;
let hub: TestHub;
let agent: TestAgent;
let env: Record<string, string>;

const docker = (args: string[]) => run(DOCKER_BIN, args, { ...env, DOCKER_CLI_HINTS: 'false' }, { timeoutMs: 20_000 });

/** Writes until the file system says ENOSPC. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

before(async () => {
  engines = await startEngines(1, { prefix: 'full' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-full-'));
  mountPoint = join(work, 'data');
  await mkdir(mountPoint);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', mountPoint]);
  mounted = true;
  hub = await startTestHub({ dataDir: mountPoint });
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'full-0'), docker: engines[0]!.dockerHost });
  await agent.waitConnected();
  const exported = spawnDockfleet(['docker-env', 'full-0', '--data', mountPoint, '--dir', join(work, 'certs')]);
  assert.equal((await exported.exited).code, 0, exported.stderr());
  env = parseExports(exported.stdout());
  await runContainer(engines[0]!, { name: 'keep' });
  fill(join(mountPoint, 'filler'));
});

after(async () => {
  await agent?.stop();
  if (mounted) await rm(join(mountPoint, 'filler'), { force: true });
  await hub?.stop();
  if (mounted) execFileSync('umount', [mountPoint]);
  await stopEngines(engines ?? []);
  if (work) await rm(work, { recursive: true, force: true });
});

test('docker create is refused with storage_full and creates nothing on the host', async () => {
  const res = await docker(['create', '--name', 'unaudited', BUSYBOX_IMAGE, 'true']);
  assert.notEqual(res.code, 0, 'the create was refused');
  assert.match(res.stderr, /Error response from daemon: .*audit log.*\[storage_full\]/);
  assert.equal((await engineRequest(engines[0]!.socketPath, 'GET', '/containers/unaudited/json')).status, 404, 'no container was made');
  const raw = await hubRequest(hub.url, hub.caPem, '/docker/nodes/full-0/v1.41/containers/create?name=unaudited2', {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ Image: BUSYBOX_IMAGE }),
  });
  assert.equal(raw.status, 507);
  assert.equal(raw.headers['x-dockfleet-error'], 'storage_full');
  assert.match(raw.json.message, /audit log/);
});

test('docker rm is refused and the container stays; docker ps still answers', async () => {
  const rm1 = await docker(['rm', '-f', 'keep']);
  assert.notEqual(rm1.code, 0);
  assert.match(rm1.stderr, /audit log/);
  assert.equal((await engineRequest(engines[0]!.socketPath, 'GET', '/containers/keep/json')).status, 200, 'the container is still there');
  const ps = await docker(['ps', '-a', '--format', '{{.Names}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /^keep$/m);
});

test('a REST write says storage_full, not internal error', async () => {
  const res = await hub.api('POST', '/api/v1/tokens', { name: 'while-full' });
  assert.equal(res.status, 507, JSON.stringify(res.json));
  assert.equal(res.json.error.code, 'storage_full');
  const enroll = await hub.api('POST', '/api/v1/enrollments', { name: 'later' });
  assert.equal(enroll.json.error.code, 'storage_full');
  assert.equal((await hub.api('GET', '/api/v1/nodes')).status, 200, 'reads go on');
});
