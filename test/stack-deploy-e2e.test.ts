/** Stacks end to end, as a person uses them: `dockfleet stack deploy -f compose.yml --wait`
 * through a real hub to a real agent process and a private engine; the stack comes up healthy,
 * docker-compose v1 on the host lists it, a crash-looping revision is rolled back whole, the job
 * history shows why, and `stack rm` takes it away. Secret values stay out of every record. */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { run } from './support/docker-cli.ts';
import { BUSYBOX_IMAGE, engineRequest, type TestEngine } from './support/engines.ts';
import { waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'shop-01';
const SECRET = 'pw-5ecret-e2e-value';
let engine: TestEngine;
let hub: TestHub;
let rig: NodeRig | undefined;
let work: string;

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet([...args, '--data', hub.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

function composeFile(revision: 'good' | 'crash'): string {
  const worker = revision === 'good' ? "    command: ['sh', '-c', 'echo worker up; exec sleep 3600']" : "    command: ['sh', '-c', 'echo worker cannot start: missing config >&2; exit 3']";
  return [
    'services:',
    '  db:',
    `    image: ${BUSYBOX_IMAGE}`,
    "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600']",
    '    environment:',
    '      DB_PASSWORD: ${DB_SECRET}',
    '    healthcheck:',
    "      test: ['CMD-SHELL', 'test -f /tmp/ready']",
    '      interval: 300ms',
    '      retries: 3',
    '  worker:',
    `    image: ${BUSYBOX_IMAGE}`,
    worker,
    '    restart: always',
    '    depends_on:',
    '      db:',
    '        condition: service_healthy',
    '    labels:',
    `      release: ${revision}`,
    '',
  ].join('\n');
}

async function stackContainers(): Promise<Array<{ Names: string[]; State: string; Labels: Record<string, string> }>> {
  const filters = encodeURIComponent(JSON.stringify({ label: ['com.docker.compose.project=shop'] }));
  return (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json;
}

/** Every file below `dir`, read as text, must not contain `needle`. */
async function assertNowhereIn(dir: string, needle: string): Promise<void> {
  for (const entry of await readdir(dir, { recursive: true })) {
    const path = join(dir, String(entry));
    if (!(await stat(path)).isFile()) continue;
    assert.ok(!(await readFile(path)).includes(needle), `${path} holds the secret value`);
  }
}

before(async () => {
  rig = await startNodeRig('stacke2e', NODE);
  ({ engine, hub, dir: work } = rig);
  // Given as DB_SECRET, read by the service as DB_PASSWORD: the agent must get it under the latter.
  await writeFile(join(work, 'secret.env'), `DB_SECRET=${SECRET}\n`);
});

after(async () => {
  await stopNodeRig({ ...rig });
});

test('stack deploy --wait brings a compose project up healthy on the node; docker-compose v1 lists it', { timeout: 120_000 }, async () => {
  await writeFile(join(work, 'compose.yml'), composeFile('good'));
  const deploy = await cli('stack', 'deploy', 'shop', '-f', join(work, 'compose.yml'), '--node', NODE, '--secret-env-file', join(work, 'secret.env'), '--wait');
  assert.equal(deploy.code, 0, `${deploy.stdout}\n${deploy.stderr}`);
  assert.match(deploy.stdout.trimEnd().split('\n').at(-1)!, /^job_[0-9a-z]+$/, 'the last line is the job id');

  const ls = await cli('stack', 'ls', '--json');
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), [{ name: 'shop', revision: 1, nodes: [{ node: NODE, revision: 1, status: 'healthy' }] }]);

  const containers = await stackContainers();
  assert.equal(containers.length, 2);
  assert.ok(
    containers.every((c) => c.State === 'running'),
    JSON.stringify(containers.map((c) => [c.Names, c.State])),
  );
  const db = containers.find((c) => c.Labels['com.docker.compose.service'] === 'db')!;
  const env = (await engineRequest(engine.socketPath, 'GET', `/containers/${db.Names[0]!.slice(1)}/json`)).json.Config.Env as string[];
  assert.ok(env.includes(`DB_PASSWORD=${SECRET}`), 'the secret reaches the container, and only there');

  const ps = await run('docker-compose', ['-p', 'shop', 'ps'], { DOCKER_HOST: engine.dockerHost }, { cwd: work });
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /shop_db_1\s.*Up/);
  assert.match(ps.stdout, /shop_worker_1\s.*Up/);
  const logs = await run('docker-compose', ['-p', 'shop', 'logs', '--no-color', 'worker'], { DOCKER_HOST: engine.dockerHost }, { cwd: work });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /worker up/, 'docker-compose logs finds the service by its labels');

  const jobs = await cli('jobs', '--stack', 'shop', '--json');
  const list = JSON.parse(jobs.stdout) as Array<Record<string, unknown>>;
  assert.equal(list.length, 1);
  assert.deepEqual(Object.keys(list[0]!).sort(), ['createdAt', 'finishedAt', 'id', 'kind', 'node', 'stack', 'state']);
  assert.equal(list[0]!.state, 'succeeded');
});

test('a crash-looping revision fails the gate and the whole stack is rolled back; the job says why', { timeout: 180_000 }, async () => {
  const before = (await stackContainers()).map((c) => c.Names[0]).sort();
  await writeFile(join(work, 'compose.yml'), composeFile('crash'));
  const deploy = await cli('stack', 'deploy', 'shop', '-f', join(work, 'compose.yml'), '--node', NODE, '--secret-env-file', join(work, 'secret.env'), '--wait');
  assert.equal(deploy.code, 1, `a failed deploy exits 1: ${deploy.stdout}\n${deploy.stderr}`);
  const jobId = deploy.stdout.trimEnd().split('\n').at(-1)!;

  const ls = JSON.parse((await cli('stack', 'ls', '--json')).stdout) as Array<{ nodes: Array<{ revision: number; status: string }> }>;
  assert.equal(ls[0]!.nodes[0]!.status, 'rolled-back');
  assert.equal(ls[0]!.nodes[0]!.revision, 1, 'the node is back on revision 1');

  const after = await waitFor(
    async () => {
      const now = await stackContainers();
      return now.every((c) => c.State === 'running') ? now : null;
    },
    15_000,
    'the previous revision running again',
  );
  assert.deepEqual(after.map((c) => c.Names[0]).sort(), before);
  assert.ok(
    after.every((c) => c.Labels.release === undefined || c.Labels.release === 'good'),
    'revision 1 serves again',
  );

  const show = await cli('job', 'show', jobId, '--json');
  assert.equal(show.code, 0, show.stderr);
  const detail = JSON.parse(show.stdout) as { state: string; error: string | null; steps: unknown[] };
  assert.equal(detail.state, 'failed');
  assert.match(String(detail.error), /worker/);
  assert.match(String(detail.error), /missing config/, "the failing service's last log lines");
  assert.ok(detail.steps.length > 0);

  const history = JSON.parse((await cli('stack', 'history', 'shop', '--json')).stdout) as Array<{ revision: number }>;
  assert.deepEqual(
    history.map((r) => r.revision),
    [2, 1],
    'revisions, newest first',
  );
});

test('the secret value is in no record: not the hub database, not the agent state dir, not an API answer', async () => {
  await assertNowhereIn(join(work, 'agent'), SECRET);
  for (const file of await readdir(hub.dataDir)) {
    if (file.startsWith('dockfleet.db')) assert.ok(!(await readFile(join(hub.dataDir, file))).includes(SECRET), `${file} holds the secret`);
  }
  for (const path of ['/api/v1/stacks', '/api/v1/stacks/shop', '/api/v1/stacks/shop/history', '/api/v1/jobs?stack=shop']) {
    assert.ok(!JSON.stringify((await hub.api('GET', path)).json).includes(SECRET), `${path} shows the secret`);
  }
});

test('stack rm --wait removes the stack from the node', { timeout: 60_000 }, async () => {
  const removed = await cli('stack', 'rm', 'shop', '--wait');
  assert.equal(removed.code, 0, `${removed.stdout}\n${removed.stderr}`);
  assert.deepEqual(await stackContainers(), []);
});
