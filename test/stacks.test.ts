/** Stacks as durable intent at the hub: a Compose file validated before anything is queued,
 * revisions, rollouts in waves that stop at the first failed node, selectors, rollback,
 * secrets kept sealed, and the CLI's exit codes. Agents are test agents on the real channel. */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import type { Http2ServerResponse } from 'node:http2';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import type { JobRequest } from '../src/protocol/jobs.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { beginEvents, send, startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';
import { spawnDockfleet } from './support/processes.ts';

const COMPOSE = 'services:\n  web:\n    image: busybox:1.36\n    environment:\n      MODE: "${MODE}"\n';
const SECRET = 'plant-7f3c9e1d-never-in-plaintext';

let hub: TestHub;
const agents: JobAgent[] = [];
/** Nodes whose deploys fail (rolled back). */
let failing = new Set<string>();

function failRolledBack(job: JobRequest, res: Http2ServerResponse): void {
  const at = Date.now();
  beginEvents(res);
  send(res, { t: 'accepted', at });
  send(res, {
    t: 'done',
    result: { state: 'failed', error: 'web: health gate failed', revision: Math.max(0, (job.target?.revision ?? 1) - 1), rolledBack: true, startedAt: at, finishedAt: Date.now() },
  });
  res.end();
}

const deliveredTo = (node: string, stack: string): JobRequest[] =>
  agents
    .find((a) => a.node === node)!
    .deliveries.map((d) => d.job)
    .filter((j) => j.stack === stack);

async function rolloutDone(stack: string, id: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await hub.api('GET', `/api/v1/stacks/${stack}/rollouts/${id}`);
      return r.json.state !== 'running' && r.json;
    },
    15_000,
    `rollout ${id}`,
  );
}

before(async () => {
  hub = await startTestHub();
  for (const name of ['n1', 'n2', 'n3']) {
    const agent = await startJobAgent({
      hubUrl: hub.url,
      code: await mintCode(hub, name),
      answer: (job, res) => (failing.has(name) && job.kind === 'deploy' ? failRolledBack(job, res) : succeed(job, res)),
    });
    await agent.waitConnected();
    agents.push(agent);
  }
});
after(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
});
beforeEach(() => {
  failing = new Set();
});

test('an invalid Compose file is refused with path and line before anything is stored or queued', async () => {
  const jobsBefore = (await hub.api('GET', '/api/v1/jobs')).json.length;
  for (const compose of ['services:\n  web:\n    image: [unclosed\n', 'services:\n  web:\n    image: busybox\n    build: .\n', 'services:\n  web:\n    image: busybox\n    ports: 12\n']) {
    const res = await hub.api('POST', '/api/v1/stacks/bad/deploy', { compose, target: { node: 'n1' } });
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.equal(res.json.error.code, 'validation_failed');
    assert.ok(res.json.error.errors.length > 0);
    for (const e of res.json.error.errors) {
      assert.equal(typeof e.path, 'string');
      assert.equal(typeof e.message, 'string');
    }
    assert.ok(
      res.json.error.errors.some((e: { line: number | null }) => typeof e.line === 'number' && e.line >= 2),
      JSON.stringify(res.json.error.errors),
    );
  }
  assert.equal((await hub.api('GET', '/api/v1/stacks/bad')).status, 404);
  assert.equal((await hub.api('GET', '/api/v1/jobs')).json.length, jobsBefore);
  assert.equal(deliveredTo('n1', 'bad').length, 0);
});

test('validate checks a Compose file as a deploy would, and stores, queues and audits nothing', async () => {
  const auditBefore = (await hub.api('GET', '/api/v1/audit?limit=1000')).json.length;
  const bad = await hub.api('POST', '/api/v1/stacks/draft/validate', { compose: 'services:\n  web:\n    image: busybox\n    ports: 12\n' });
  assert.equal(bad.status, 200, JSON.stringify(bad.json));
  assert.ok(
    bad.json.errors.some((e: { path: string; line: number | null }) => /services\.web\.ports/.test(e.path) && e.line === 4),
    JSON.stringify(bad.json),
  );
  const unset = await hub.api('POST', '/api/v1/stacks/draft/validate', { compose: 'services:\n  web:\n    image: ${IMAGE}\n' });
  assert.ok(
    unset.json.errors.some((e: { message: string }) => /IMAGE/.test(e.message)),
    'an unset variable is a problem',
  );
  const set = await hub.api('POST', '/api/v1/stacks/draft/validate', { compose: 'services:\n  web:\n    image: ${IMAGE}\n', env: { IMAGE: 'busybox' } });
  assert.deepEqual(set.json, { errors: [] });
  assert.equal((await hub.api('GET', '/api/v1/stacks/draft')).status, 404);
  assert.equal((await hub.api('GET', '/api/v1/audit?limit=1000')).json.length, auditBefore);
});

test('a deploy to 3 nodes in waves of 1 stops at the failed 2nd node: the 3rd never gets a job', async () => {
  failing = new Set(['n2']);
  const res = await hub.api('POST', '/api/v1/stacks/waves/deploy', { compose: COMPOSE, env: { MODE: 'a' }, target: { nodes: ['n1', 'n2', 'n3'] } });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  assert.equal(res.json.revision, 1);
  assert.equal(res.json.jobs.length, 1, 'only the first wave is filed at once');
  const rollout = await rolloutDone('waves', res.json.rollout);
  assert.equal(rollout.state, 'failed');
  assert.equal(rollout.stoppedAtNode, 'n2');
  assert.equal(rollout.jobs.length, 2);
  assert.equal(deliveredTo('n1', 'waves').length, 1);
  assert.equal(deliveredTo('n2', 'waves').length, 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(deliveredTo('n3', 'waves').length, 0, 'n3 must never get a job');
  const jobs = (await hub.api('GET', '/api/v1/jobs?stack=waves')).json as Array<{ node: string }>;
  assert.deepEqual(jobs.map((j) => j.node).sort(), ['n1', 'n2']);
  const ls = (await hub.api('GET', '/api/v1/stacks')).json as Array<{ name: string; revision: number; nodes: unknown[] }>;
  const waves = ls.find((s) => s.name === 'waves');
  assert.deepEqual(waves, {
    name: 'waves',
    revision: 1,
    nodes: [
      { node: 'n1', revision: 1, status: 'healthy' },
      { node: 'n2', revision: 0, status: 'rolled-back' },
    ],
  });
});

test('a repeated submit with the same idempotency key returns the same revision and jobs', async () => {
  const body = { compose: COMPOSE, env: { MODE: 'b' }, target: { node: 'n1' }, idempotencyKey: 'same-1' };
  const first = await hub.api('POST', '/api/v1/stacks/idem/deploy', body);
  const second = await hub.api('POST', '/api/v1/stacks/idem/deploy', body);
  assert.equal(first.status, 202);
  assert.deepEqual(second.json, first.json);
  assert.equal((await hub.api('GET', '/api/v1/stacks/idem/history')).json.length, 1);
});

test('a selector reaches exactly the nodes carrying the label when the deploy is filed', async () => {
  await hub.api('PUT', '/api/v1/nodes/n1/labels', { labels: { role: 'web' } });
  await hub.api('PUT', '/api/v1/nodes/n3/labels', { labels: { role: 'web' } });
  const res = await hub.api('POST', '/api/v1/stacks/sel/deploy', { compose: COMPOSE, env: { MODE: 's' }, target: { selector: 'role=web' }, parallel: 2 });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  assert.equal(res.json.jobs.length, 2);
  assert.equal((await rolloutDone('sel', res.json.rollout)).state, 'succeeded');
  assert.equal(deliveredTo('n1', 'sel').length, 1);
  assert.equal(deliveredTo('n2', 'sel').length, 0);
  assert.equal(deliveredTo('n3', 'sel').length, 1);
  const none = await hub.api('POST', '/api/v1/stacks/sel/deploy', { compose: COMPOSE, target: { selector: 'role=nobody' } });
  assert.equal(none.status, 400);
  assert.equal(none.json.error.code, 'validation_failed');
});

test('rollback files jobs that carry the earlier revision', async () => {
  const one = await hub.api('POST', '/api/v1/stacks/rb/deploy', { compose: COMPOSE, env: { MODE: 'one' }, target: { node: 'n3' } });
  await rolloutDone('rb', one.json.rollout);
  const two = await hub.api('POST', '/api/v1/stacks/rb/deploy', { compose: COMPOSE, env: { MODE: 'two' }, target: { node: 'n3' } });
  assert.equal(two.json.revision, 2);
  await rolloutDone('rb', two.json.rollout);
  const back = await hub.api('POST', '/api/v1/stacks/rb/rollback', {});
  assert.equal(back.status, 202, JSON.stringify(back.json));
  assert.equal(back.json.revision, 1);
  assert.equal((await rolloutDone('rb', back.json.rollout)).state, 'succeeded');
  const jobs = deliveredTo('n3', 'rb');
  const last = jobs.at(-1)!;
  assert.equal(last.kind, 'rollback');
  assert.equal(last.target?.revision, 1);
  assert.equal(last.target?.project.services.web?.environment.MODE, 'one');
  const stack = (await hub.api('GET', '/api/v1/stacks/rb')).json;
  assert.equal(stack.revision, 1);
  assert.deepEqual(
    stack.nodes.map((n: { node: string; revision: number; status: string }) => [n.node, n.revision, n.status]),
    [['n3', 1, 'healthy']],
  );
});

test('secret values reach the agent but never the API answers or the database file', async () => {
  const compose = 'services:\n  app:\n    image: busybox:1.36\n    environment:\n      TOKEN: "${TOKEN}"\n';
  const res = await hub.api('POST', '/api/v1/stacks/sec/deploy', { compose, secretEnv: { TOKEN: SECRET }, target: { node: 'n2' } });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  await rolloutDone('sec', res.json.rollout);
  const job = deliveredTo('n2', 'sec')[0]!;
  assert.equal(job.secrets.env.TOKEN, SECRET, 'the job carries the value to the agent');
  assert.ok(!JSON.stringify(job.target).includes(SECRET), 'never inside the project');
  for (const path of [
    '/api/v1/stacks',
    '/api/v1/stacks/sec',
    '/api/v1/stacks/sec/history',
    '/api/v1/stacks/sec/revisions/1',
    `/api/v1/stacks/sec/rollouts/${res.json.rollout}`,
    '/api/v1/jobs?stack=sec',
  ]) {
    const answer = await hub.api('GET', path);
    assert.equal(answer.status, 200, path);
    assert.ok(!JSON.stringify(answer.json).includes(SECRET), `${path} shows the secret`);
  }
  const rev = (await hub.api('GET', '/api/v1/stacks/sec/revisions/1')).json;
  assert.deepEqual(rev.secretEnv, ['TOKEN']);
  for (const file of await readdir(hub.dataDir)) {
    if (!file.startsWith('dockfleet.db')) continue;
    const bytes = await readFile(join(hub.dataDir, file));
    assert.equal(bytes.indexOf(SECRET), -1, `${file} holds the secret in plaintext`);
  }
});

test('a secret used under another name reaches the agent under the name the service reads, rendered', async () => {
  const compose = 'services:\n  app:\n    image: busybox:1.36\n    environment:\n      WORDPRESS_DB_PASSWORD: "pw-${DB_PW}"\n';
  const res = await hub.api('POST', '/api/v1/stacks/renamed/deploy', { compose, secretEnv: { DB_PW: SECRET }, target: { node: 'n2' } });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  await rolloutDone('renamed', res.json.rollout);
  const job = deliveredTo('n2', 'renamed')[0]!;
  assert.deepEqual(job.target?.project.services.app?.secretEnvironment, ['WORDPRESS_DB_PASSWORD']);
  assert.deepEqual(job.secrets.env, { WORDPRESS_DB_PASSWORD: `pw-${SECRET}` }, 'the agent looks the value up by the variable the service reads');
  assert.deepEqual((await hub.api('GET', '/api/v1/stacks/renamed/revisions/1')).json.secretEnv, ['DB_PW'], 'the form asks again for what was given');
});

test('dockfleet stack deploy --wait: exit 0 when healthy, 1 when the deploy failed; ls --json per CONTRACT.md', async () => {
  const dir = hub.dataDir;
  await writeFile(join(dir, 'ca-test.pem'), hub.caPem);
  await writeFile(join(dir, 'compose.yaml'), 'services:\n  web:\n    image: busybox:1.36\n    env_file: web.env\n');
  await writeFile(join(dir, 'web.env'), 'MODE=cli\n');
  const env = { DOCKFLEET_HUB: hub.url, DOCKFLEET_TOKEN: hub.token, DOCKFLEET_CA: join(dir, 'ca-test.pem') };
  const good = spawnDockfleet(['stack', 'deploy', 'cli', '-f', join(dir, 'compose.yaml'), '--node', 'n1', '--wait'], env);
  assert.equal((await good.exited).code, 0, good.stderr());
  const lastLine = good.stdout().trim().split('\n').at(-1)!;
  assert.match(lastLine, /^job_[0-9a-z]+$/);
  assert.equal(deliveredTo('n1', 'cli').at(-1)?.target?.project.services.web?.environment.MODE, 'cli');
  failing = new Set(['n1']);
  const bad = spawnDockfleet(['stack', 'deploy', 'cli', '-f', join(dir, 'compose.yaml'), '--node', 'n1', '--wait'], env);
  assert.equal((await bad.exited).code, 1, bad.stderr());
  assert.match(bad.stdout().trim().split('\n').at(-1)!, /^job_/);
  const ls = spawnDockfleet(['stack', 'ls', '--json'], env);
  assert.equal((await ls.exited).code, 0, ls.stderr());
  const cli = (JSON.parse(ls.stdout()) as Array<Record<string, unknown>>).find((s) => s.name === 'cli')!;
  assert.deepEqual(Object.keys(cli).sort(), ['name', 'nodes', 'revision']);
  assert.deepEqual(cli.nodes, [{ node: 'n1', revision: 1, status: 'rolled-back' }]);
});
