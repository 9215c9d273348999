/**
 * Hub replicas wired (issue 17, items 2-3): three in-process hubs share a private PostgreSQL and a
 * private nats-server; one real agent beside a private engine holds its link to replica A. The
 * stock docker CLI works through B and C as through A (ps, run, a hijacked exec, logs -f, a
 * 64 MiB cp); a stack deploy filed on B runs once, on A's link; with NATS stopped the holder keeps
 * working while another replica fails at once with bus_unavailable, and both work again when NATS
 * is back; the link moved to B is followed by A at once and the old epoch is refused; a node
 * nobody holds is "node offline" at once on every replica.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { DOCKER_BIN, parseExports, run } from './support/docker-cli.ts';
import { BUSYBOX_IMAGE, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet } from './support/processes.ts';
import { startReplicas, type Replicas } from './support/replicas.ts';

const NODE = 'rep-01';
let work: string;
let engines: TestEngine[] = [];
let cluster: Replicas;
let agent: TestAgent | undefined;
let token: string;
let policy: string;
const envs = new Map<TestHub, NodeJS.ProcessEnv>();

function hub(i: number): TestHub {
  return cluster.hubs[i]!;
}

/** DOCKER_HOST and certificates for the node through `through` (dockfleet docker-env). */
async function dockerEnv(through: TestHub): Promise<NodeJS.ProcessEnv> {
  const known = envs.get(through);
  if (known) return known;
  const i = cluster.hubs.indexOf(through);
  const p = spawnDockfleet(['docker-env', NODE, '--hub', through.url, '--token', token, '--ca', join(work, 'ca.pem'), '--dir', join(work, `certs-${i}`)]);
  assert.equal((await p.exited).code, 0, p.stderr());
  const env = { ...parseExports(p.stdout()), DOCKER_CLI_HINTS: 'false' };
  envs.set(through, env);
  return env;
}

async function docker(through: TestHub, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const r = await run(DOCKER_BIN, args, await dockerEnv(through), { timeoutMs });
  return { ...r, ms: Date.now() - started };
}

function holderOf(h: TestHub): string | null {
  const node = h.hub.registry.byName(NODE);
  const owner = node ? h.replica!.ownership.owner(node.id) : null;
  return owner?.state === 'held' ? owner.replica : null;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-replicas-'));
  engines = await startEngines(1, { prefix: 'replicas' });
  cluster = await startReplicas(3);
  await writeFile(join(work, 'ca.pem'), hub(0).caPem);
  policy = join(work, 'policy.json');
  await writeFile(
    policy,
    JSON.stringify({ sections: Object.fromEntries(['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'archive', 'images', 'volumes', 'networks'].map((s) => [s, true])) }),
  );
  agent = await startTestAgent({ hubUrl: hub(0).url, code: await mintCode(hub(0), NODE), docker: engines[0]!.dockerHost, policy });
  await agent.waitConnected(1, 30_000);
  token = (await hub(0).api('POST', '/api/v1/tokens', { name: 'cli' })).json.token as string;
  for (const h of cluster.hubs) await waitFor(() => holderOf(h) === 'replica-a', 10_000, 'every replica sees A holding the node');
});

after(async () => {
  await agent?.stop();
  await cluster?.close();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

test('every replica lists the node online, held by A', async () => {
  for (const h of cluster.hubs) {
    const nodes = (await h.api('GET', '/api/v1/nodes')).json as Array<{ name: string; status: string }>;
    assert.equal(nodes.find((n) => n.name === NODE)?.status, 'online', h.replica!.replicaId);
  }
});

test('docker ps, run, a hijacked exec and logs -f work through B and C as through A', { timeout: 120_000 }, async () => {
  for (const h of cluster.hubs) {
    const who = h.replica!.replicaId;
    const ps = await docker(h, ['ps', '-a', '--format', '{{.ID}}']);
    assert.equal(ps.code, 0, `${who}: ${ps.stderr}`);
    const ran = await docker(h, ['run', '--rm', BUSYBOX_IMAGE, 'echo', `hello-${who}`]);
    assert.equal(ran.code, 0, `${who}: ${ran.stderr}`);
    assert.equal(ran.stdout.trim(), `hello-${who}`);
  }
  const started = await docker(hub(0), ['run', '-d', '--name', 'rep-sleeper', BUSYBOX_IMAGE, 'sleep', '600']);
  assert.equal(started.code, 0, started.stderr);
  for (const h of cluster.hubs.slice(1)) {
    const who = h.replica!.replicaId;
    const exec = await docker(h, ['exec', '-i', 'rep-sleeper', 'sh', '-c', 'cat; echo " via exec"'], 30_000);
    // stdin is empty here: the exec's output alone, through the hijacked stream.
    assert.equal(exec.code, 0, `${who}: ${exec.stderr}`);
    assert.match(exec.stdout, /via exec/);
    const name = `rep-logs-${who}`;
    const logs = await docker(h, ['run', '-d', '--name', name, BUSYBOX_IMAGE, 'sh', '-c', 'echo first; sleep 1; echo second']);
    assert.equal(logs.code, 0, logs.stderr);
    const followed = await docker(h, ['logs', '-f', name], 30_000);
    assert.equal(followed.code, 0, `${who}: ${followed.stderr}`);
    assert.deepEqual(followed.stdout.trim().split('\n'), ['first', 'second'], `${who}: logs -f followed to the end`);
  }
});

test('a 64 MiB docker cp through B arrives whole', { timeout: 120_000 }, async () => {
  const data = randomBytes(64 * 1024 * 1024);
  const file = join(work, 'big.bin');
  await writeFile(file, data);
  const cp = await docker(hub(1), ['cp', file, 'rep-sleeper:/tmp/big.bin'], 90_000);
  assert.equal(cp.code, 0, cp.stderr);
  const sum = await docker(hub(1), ['exec', 'rep-sleeper', 'md5sum', '/tmp/big.bin']);
  assert.equal(sum.code, 0, sum.stderr);
  assert.equal(sum.stdout.split(/\s+/)[0], createHash('md5').update(data).digest('hex'));
});

test('a stack deploy filed on B, for the agent held by A, runs exactly once', { timeout: 90_000 }, async () => {
  const compose = ['services:', '  once:', `    image: ${BUSYBOX_IMAGE}`, "    command: ['sleep', '600']", ''].join('\n');
  const filed = await hub(1).api('POST', '/api/v1/stacks/once/deploy', { compose, target: { node: NODE } });
  assert.equal(filed.status, 202, JSON.stringify(filed.json));
  type Job = { id: string; kind: string; state: string; node: string };
  const done = await waitFor(
    async () => ((await hub(1).api('GET', `/api/v1/jobs?node=${NODE}`)).json as Job[]).find((j) => j.state === 'succeeded' || j.state === 'failed'),
    60_000,
    'the deploy job to finish',
  );
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  const listed = await docker(hub(0), ['ps', '-a', '--filter', 'label=com.docker.compose.project=once', '--format', '{{.Names}}']);
  assert.equal(listed.stdout.trim().split('\n').filter(Boolean).length, 1, `one container: ${listed.stdout}`);
  for (const h of cluster.hubs) {
    const job = (await h.api('GET', `/api/v1/jobs/${done.id}`)).json as Job;
    assert.equal(job.state, 'succeeded', h.replica!.replicaId);
  }
});

test('NATS stopped: the holder keeps working, another replica fails at once with bus_unavailable; NATS back: both work', { timeout: 120_000 }, async () => {
  await cluster.nats.stop();
  try {
    await waitFor(() => cluster.hubs.every((h) => !h.replica!.bus.up), 15_000, 'every replica to see the bus down');
    const onA = await docker(hub(0), ['ps', '--format', '{{.Names}}']);
    assert.equal(onA.code, 0, onA.stderr);
    assert.match(onA.stdout, /rep-sleeper/);
    const onB = await docker(hub(1), ['ps']);
    assert.notEqual(onB.code, 0);
    assert.match(onB.stderr, /cluster bus is down/);
    assert.ok(onB.ms < 10_000, `failed at once (${onB.ms} ms)`);
  } finally {
    await cluster.nats.restart();
  }
  for (const h of cluster.hubs) await waitFor(() => holderOf(h) === 'replica-a', 30_000, `${h.replica!.replicaId} to see A holding the node again`);
  for (const h of cluster.hubs) {
    const ps = await docker(h, ['ps', '--format', '{{.Names}}']);
    assert.equal(ps.code, 0, `${h.replica!.replicaId}: ${ps.stderr}`);
  }
});

test("the agent's link moves to B: A forwards to B at once, and A's old epoch is refused", { timeout: 90_000 }, async () => {
  const nodeId = hub(0).hub.registry.byName(NODE)!.id;
  const oldEpoch = hub(0).replica!.ownership.localEpoch(nodeId);
  assert.ok(oldEpoch !== undefined);
  await agent!.stop();
  agent = await startTestAgent({ hubUrl: hub(1).url, stateDir: agent!.stateDir, docker: engines[0]!.dockerHost, policy });
  await agent.waitConnected(1, 30_000);
  for (const h of cluster.hubs) await waitFor(() => holderOf(h) === 'replica-b', 10_000, `${h.replica!.replicaId} to see B holding the node`);
  assert.equal(hub(0).hub.registry.link(nodeId), null, 'A holds no link for the node');
  assert.equal(hub(1).replica!.ownership.holds(nodeId, oldEpoch), false, 'the old epoch is not B’s');
  assert.equal(hub(0).replica!.ownership.holds(nodeId, oldEpoch), false, 'nor A’s any more (fenced)');
  const ps = await docker(hub(0), ['ps', '--format', '{{.Names}}']);
  assert.equal(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /rep-sleeper/);
});

test('a node nobody holds is offline at once through every replica', { timeout: 60_000 }, async () => {
  await agent!.stop();
  agent = undefined;
  for (const h of cluster.hubs) await waitFor(() => holderOf(h) === null, 15_000, `${h.replica!.replicaId} to see nobody holding the node`);
  for (const h of cluster.hubs) {
    const ps = await docker(h, ['ps']);
    assert.notEqual(ps.code, 0);
    assert.match(ps.stderr, /offline/);
    assert.ok(ps.ms < 10_000, `at once (${ps.ms} ms)`);
    const nodes = (await h.api('GET', '/api/v1/nodes')).json as Array<{ name: string; status: string }>;
    assert.equal(nodes.find((n) => n.name === NODE)?.status, 'offline');
  }
});
