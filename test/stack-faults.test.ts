/** Stacks at the hub under faults, end to end: a real hub, three real agent processes, each on
 * its own private engine. Rollouts in waves that stop at a failed node (a name clash on its
 * engine), drift reaching the hub within 10 s and a deploy reconciling it, a second rollout of a
 * running stack refused, an agent SIGKILLed during its gate wait, a node offline when its job is
 * filed, a node that gains a selector's label after the deploy, and a duplicate submit. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODES = ['n1', 'n2', 'n3'] as const;
type NodeName = (typeof NODES)[number];
let engines: Record<NodeName, TestEngine>;
const agents = new Map<NodeName, DockfleetProcess>();
let hub: TestHub;
let work: string;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}
interface LsItem {
  name: string;
  revision: number;
  nodes: Array<{ node: string; revision: number; status: string }>;
}
interface JobItem {
  id: string;
  node: string;
  stack: string;
  state: string;
  kind: string;
}

async function cli(...args: string[]): Promise<CliResult> {
  const p = spawnDockfleet([...args, '--data', hub.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const lastLine = (r: CliResult): string => r.stdout.trimEnd().split('\n').at(-1)!;

async function ls(stack: string): Promise<LsItem | undefined> {
  const r = await cli('stack', 'ls', '--json');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as LsItem[]).find((s) => s.name === stack);
}
const nodeOf = (item: LsItem | undefined, node: string) => item?.nodes.find((n) => n.node === node);

async function jobs(stack: string): Promise<JobItem[]> {
  const r = await cli('jobs', '--stack', stack, '--json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as JobItem[];
}

async function startAgent(node: NodeName, code?: string): Promise<void> {
  const p = spawnDockfleet([
    'agent',
    '--hub',
    hub.url,
    ...(code === undefined ? [] : ['--code', code]),
    '--state',
    join(work, `agent-${node}`),
    '--docker',
    engines[node].dockerHost,
    '--policy',
    join(work, 'no-policy.json'),
  ]);
  agents.set(node, p);
  await p.waitForLine(new RegExp(`agent ${node} connected`), 30_000);
}

/** `services` of a Compose file: each a busybox that sleeps; `healthy` ones have a fast healthcheck. */
async function composeFile(name: string, services: Record<string, { healthy: boolean; release?: string }>): Promise<string> {
  const lines = ['services:'];
  for (const [svc, o] of Object.entries(services)) {
    lines.push(`  ${svc}:`, `    image: ${BUSYBOX_IMAGE}`, "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600']");
    if (o.release !== undefined) lines.push('    labels:', `      release: ${o.release}`);
    if (o.healthy) lines.push('    healthcheck:', "      test: ['CMD-SHELL', 'test -f /tmp/ready']", '      interval: 200ms', '      retries: 3');
  }
  const path = join(work, `${name}.yml`);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

async function containers(node: NodeName, stack: string): Promise<Array<{ Id: string; Names: string[]; State: string; Labels: Record<string, string> }>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${stack}`] }));
  return (await engineRequest(engines[node].socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json;
}

before(async () => {
  const started = await startEngines(3, { prefix: 'stackfault' });
  engines = { n1: started[0]!, n2: started[1]!, n3: started[2]! };
  work = await mkdtemp(join(tmpdir(), 'dockfleet-stack-faults-'));
  hub = await startTestHub({ dataDir: join(work, 'hub') });
  for (const node of NODES) await startAgent(node, await mintCode(hub, node));
});

after(async () => {
  for (const a of agents.values()) await a.stop();
  await hub?.stop();
  if (engines) await stopEngines(Object.values(engines));
  if (work) await rm(work, { recursive: true, force: true });
});

test('a selector rollout goes in waves of one and stops at the node whose engine refuses it; the rest keep their revision', { timeout: 240_000 }, async () => {
  for (const node of NODES) assert.equal((await cli('label', node, 'role=web')).code, 0);
  const v1 = await composeFile('web-v1', { app: { healthy: true } });
  const first = await cli('stack', 'deploy', 'web', '-f', v1, '--selector', 'role=web', '--parallel', '1', '--wait');
  assert.equal(first.code, 0, `${first.stdout}\n${first.stderr}`);
  assert.deepEqual(
    (await ls('web'))!.nodes.map((n) => [n.node, n.revision, n.status]),
    [
      ['n1', 1, 'healthy'],
      ['n2', 1, 'healthy'],
      ['n3', 1, 'healthy'],
    ],
  );

  // Revision 2 adds a service whose container name is already taken on n2's engine, outside the stack.
  await runContainer(engines.n2, { name: 'web_extra_1' });
  const v2 = await composeFile('web-v2', { app: { healthy: true }, extra: { healthy: true } });
  const second = await cli('stack', 'deploy', 'web', '-f', v2, '--selector', 'role=web', '--parallel', '1', '--wait');
  assert.equal(second.code, 1, `a failed rollout exits 1: ${second.stdout}\n${second.stderr}`);
  assert.match(second.stderr, /n2/, 'the failure names the node');

  const item = await ls('web');
  assert.equal(item!.revision, 2);
  assert.deepEqual([nodeOf(item, 'n1')!.revision, nodeOf(item, 'n1')!.status], [2, 'healthy'], 'the first wave went through');
  assert.equal(nodeOf(item, 'n2')!.revision, 1, 'the failed node is back on revision 1');
  assert.ok(['rolled-back', 'failed'].includes(nodeOf(item, 'n2')!.status), nodeOf(item, 'n2')!.status);
  assert.deepEqual([nodeOf(item, 'n3')!.revision, nodeOf(item, 'n3')!.status], [1, 'healthy'], 'the node after the failed one keeps revision 1');

  const byNode: Record<string, number> = {};
  for (const j of await jobs('web')) byNode[j.node] = (byNode[j.node] ?? 0) + 1;
  assert.deepEqual(byNode, { n1: 2, n2: 2, n3: 1 }, 'n3 was never given the revision 2 job');
  const n2 = await containers('n2', 'web');
  assert.deepEqual(
    n2.map((c) => [c.Labels['com.docker.compose.service'], c.State]),
    [['app', 'running']],
    'n2 runs revision 1 whole',
  );
  const n3 = await containers('n3', 'web');
  assert.deepEqual(
    n3.map((c) => c.Labels['com.docker.compose.service']),
    ['app'],
  );
  await engineRequest(engines.n2.socketPath, 'DELETE', '/containers/web_extra_1?force=1');
});

test('drift (a container removed, one added by hand) reaches stack ls and the API within 10 s; a deploy reconciles it', { timeout: 120_000 }, async (t) => {
  const app = (await containers('n1', 'web')).find((c) => c.Labels['com.docker.compose.service'] === 'app')!;
  await runContainer(engines.n3, { name: 'web_byhand_1', labels: { 'com.docker.compose.project': 'web', 'com.docker.compose.service': 'byhand' } });
  await engineRequest(engines.n1.socketPath, 'DELETE', `/containers/${app.Id}?force=1`);
  const t0 = Date.now();
  await waitFor(
    async () => {
      const item = await ls('web');
      return nodeOf(item, 'n1')?.status === 'drifted' && nodeOf(item, 'n3')?.status === 'drifted';
    },
    10_000,
    'stack ls shows n1 and n3 drifted',
    250,
  );
  const seconds = (Date.now() - t0) / 1000;
  const detail = (await hub.api('GET', '/api/v1/stacks/web')).json as { drifted: boolean; nodes: Array<{ node: string; drift: Array<Record<string, unknown>> }> };
  assert.equal(detail.drifted, true);
  assert.ok(
    detail.nodes.find((n) => n.node === 'n1')!.drift.some((d) => JSON.stringify(d).includes('app')),
    JSON.stringify(detail.nodes),
  );
  assert.ok(detail.nodes.find((n) => n.node === 'n3')!.drift.length > 0, JSON.stringify(detail.nodes));
  assert.ok(seconds <= 10, `drift seen after ${seconds} s`);
  t.diagnostic(`drift in stack ls after ${seconds.toFixed(2)} s`);

  const v2 = join(work, 'web-v2.yml');
  const fix = await cli('stack', 'deploy', 'web', '-f', v2, '--nodes', 'n1,n3', '--wait');
  assert.equal(fix.code, 0, `${fix.stdout}\n${fix.stderr}`);
  const item = await ls('web');
  assert.deepEqual([nodeOf(item, 'n1')!.status, nodeOf(item, 'n3')!.status], ['healthy', 'healthy']);
  const after = (await hub.api('GET', '/api/v1/stacks/web')).json as { drifted: boolean };
  assert.equal(after.drifted, false);
  assert.deepEqual((await containers('n1', 'web')).map((c) => c.State).sort(), ['running', 'running']);
  assert.deepEqual((await containers('n3', 'web')).map((c) => c.Labels['com.docker.compose.service']).sort(), ['app', 'extra'], 'the container added by hand is gone');
});

test('a second rollout of a stack while one runs is refused with rollout_in_progress', { timeout: 120_000 }, async () => {
  const slow = await composeFile('slow-v1', { worker: { healthy: false } }); // the 10 s stable window
  const first = await cli('stack', 'deploy', 'slow', '-f', slow, '--node', 'n1');
  assert.equal(first.code, 0, first.stderr);
  const second = await cli('stack', 'deploy', 'slow', '-f', slow, '--node', 'n1');
  assert.equal(second.code, 1, second.stdout);
  assert.match(second.stderr, /\[rollout_in_progress\]/);
  assert.equal((await jobs('slow')).length, 1, 'only the first rollout filed a job');
  await waitFor(async () => nodeOf(await ls('slow'), 'n1')?.status === 'healthy', 60_000, 'the first rollout done', 500);
  const third = await cli('stack', 'deploy', 'slow', '-f', slow, '--node', 'n1', '--wait');
  assert.equal(third.code, 0, `a rollout after the first one ended is taken: ${third.stderr}`);
});

test('an agent SIGKILLed during the gate wait ends its job on a whole revision when it returns', { timeout: 180_000 }, async (t) => {
  const v2 = await composeFile('slow-v2', { worker: { healthy: false, release: 'two' } });
  const deploy = await cli('stack', 'deploy', 'slow', '-f', v2, '--node', 'n1');
  assert.equal(deploy.code, 0, deploy.stderr);
  const jobId = lastLine(deploy);
  await waitFor(async () => (await hub.api('GET', `/api/v1/jobs/${jobId}`)).json.state === 'running', 30_000, 'the job running');
  await new Promise((r) => setTimeout(r, 2_000)); // inside the 10 s stable window
  const agent = agents.get('n1')!;
  agent.signal('SIGKILL');
  await agent.exited;
  await startAgent('n1');
  const job = await waitFor(
    async () => {
      const j = (await hub.api('GET', `/api/v1/jobs/${jobId}`)).json as { state: string };
      return j.state === 'succeeded' || j.state === 'failed' ? j : null;
    },
    90_000,
    'the job final',
    500,
  );
  t.diagnostic(`the interrupted job ended ${job.state}`);
  const now = await containers('n1', 'slow');
  assert.equal(now.length, 1, JSON.stringify(now.map((c) => c.Names)));
  assert.equal(now[0]!.State, 'running');
  const item = await ls('slow');
  if (job.state === 'succeeded') {
    assert.equal(now[0]!.Labels.release, 'two');
    assert.deepEqual([nodeOf(item, 'n1')!.revision, nodeOf(item, 'n1')!.status], [3, 'healthy']);
  } else {
    assert.equal(now[0]!.Labels.release, undefined, 'the old revision restored');
    assert.notEqual(nodeOf(item, 'n1')!.status, 'deploying');
  }
  assert.equal((await jobs('slow')).filter((j) => j.id === jobId).length, 1);
});

test('a node offline when the job is filed runs it when it returns', { timeout: 120_000 }, async () => {
  const agent = agents.get('n3')!;
  await agent.stop();
  await waitFor(async () => (await nodeStatus(hub, 'n3')) === 'offline', 20_000, 'n3 offline');
  const file = await composeFile('solo', { one: { healthy: true } });
  const t0 = Date.now();
  const deploy = await cli('stack', 'deploy', 'solo', '-f', file, '--node', 'n3');
  assert.equal(deploy.code, 0, deploy.stderr);
  assert.ok(Date.now() - t0 < 10_000, 'the CLI returns at once');
  const jobId = lastLine(deploy);
  assert.match(jobId, /^job_[0-9a-z]+$/);
  assert.equal((await hub.api('GET', `/api/v1/jobs/${jobId}`)).json.state, 'queued');
  assert.equal(nodeOf(await ls('solo'), 'n3')!.status, 'deploying');
  await startAgent('n3');
  await waitFor(async () => (await hub.api('GET', `/api/v1/jobs/${jobId}`)).json.state === 'succeeded', 60_000, 'the job done', 250);
  assert.deepEqual([nodeOf(await ls('solo'), 'n3')!.status], ['healthy']);
  assert.deepEqual(
    (await containers('n3', 'solo')).map((c) => c.State),
    ['running'],
  );
});

test("a node that gains a selector's label after the deploy gets the stack at the next deploy, not before", { timeout: 120_000 }, async () => {
  assert.equal((await cli('label', 'n1', 'tier=edge')).code, 0);
  const file = await composeFile('edge', { proxy: { healthy: true } });
  const first = await cli('stack', 'deploy', 'edge', '-f', file, '--selector', 'tier=edge', '--wait');
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await cli('label', 'n2', 'tier=edge')).code, 0);
  await new Promise((r) => setTimeout(r, 3_000));
  assert.deepEqual(
    (await jobs('edge')).map((j) => j.node),
    ['n1'],
  );
  assert.deepEqual(
    (await ls('edge'))!.nodes.map((n) => n.node),
    ['n1'],
  );
  assert.deepEqual(await containers('n2', 'edge'), []);
  const second = await cli('stack', 'deploy', 'edge', '-f', file, '--selector', 'tier=edge', '--wait');
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(
    (await ls('edge'))!.nodes.map((n) => [n.node, n.status]),
    [
      ['n1', 'healthy'],
      ['n2', 'healthy'],
    ],
  );
});

test('the same idempotency key from the CLI twice gives one revision and one job per node', { timeout: 120_000 }, async () => {
  const file = await composeFile('dup', { one: { healthy: true } });
  const a = await cli('stack', 'deploy', 'dup', '-f', file, '--nodes', 'n2,n3', '--parallel', '2', '--idempotency-key', 'release-42');
  const b = await cli('stack', 'deploy', 'dup', '-f', file, '--nodes', 'n2,n3', '--parallel', '2', '--idempotency-key', 'release-42', '--wait');
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(b.stdout.trim().split('\n').slice(0, 2), a.stdout.trim().split('\n'), 'the same jobs');
  const history = JSON.parse((await cli('stack', 'history', 'dup', '--json')).stdout) as Array<{ revision: number }>;
  assert.deepEqual(
    history.map((r) => r.revision),
    [1],
  );
  assert.deepEqual((await jobs('dup')).map((j) => j.node).sort(), ['n2', 'n3']);
});
