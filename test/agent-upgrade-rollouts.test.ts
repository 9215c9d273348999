/**
 * Agent upgrade rollouts, the corners (issue 16): a real `dockfleet hub` process started with a
 * release key, two real `dockfleet agent` processes (launcher and agent) that pinned it, and
 * releases built from this checkout.
 * - Node-scoped views: a customer granted node ra sees, in the rollout list and in one rollout,
 *   only ra's step, never rb's name or state; a rollout of rb alone is "not found" to it, as an id
 *   that never existed; a non-admin cannot start a rollout (403) and nothing starts.
 * - A node caught in `sending`: ra's agent is frozen (SIGSTOP) so the hub marks it sending and
 *   waits on its answer; the hub is SIGKILLed there. Started again, it hands the release over once
 *   more: ra switches exactly once, the rollout completes.
 * - The agent restarted into the new version while the hub was down (SIGKILLed while ra restarts):
 *   on reconnect the hub sees the version matches and marks the node done without sending again.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateReleaseKey } from '../src/lib/release-keys.ts';
import { NO_ENGINE } from './support/agent-fixture.ts';
import { waitFor } from './support/hub-fixture.ts';
import { hubRequest } from './support/hub-request.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { buildRelease, CHECKOUT_VERSION, publishRelease } from './support/release-builder.ts';

const TRIAL_MS = 30_000;
const [V1, V2, V3] = ['0.0.0-roll1', '0.0.0-roll2', '0.0.0-roll3'];
const NODES = ['ra', 'rb'];

type Step = { node: string; wave: number; state: string; from: string | null; reason: string | null };
type Rollout = { id: string; to: string; state: string; nodes: Step[] };

let work: string;
let dataDir: string;
let hubUrl: string;
let hubProc: DockfleetProcess | undefined;
let caPem: string;
let adminToken: string;
let customerToken: string;
let operatorToken: string;
const agents = new Map<string, DockfleetProcess>();
const releaseKey = generateReleaseKey();

async function startHub(): Promise<void> {
  hubProc = spawnDockfleet(['hub', '--data', dataDir, '--listen', hubUrl.replace('https://', ''), '--release-key', releaseKey.publicKey]);
  await hubProc.waitForLine(/hub ready /, 30_000);
  adminToken = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  caPem = await readFile(join(dataDir, 'pki', 'ca.pem'), 'utf8');
}

async function api(method: string, path: string, body?: unknown, token = adminToken): Promise<{ status: number; text: string; json: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return hubRequest(hubUrl, caPem, path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

async function rollout(id: string): Promise<Rollout> {
  const res = await api('GET', `/api/v1/agent-upgrades/${id}`);
  assert.equal(res.status, 200, res.text);
  return res.json as Rollout;
}

async function finished(id: string, timeoutMs = 90_000): Promise<Rollout> {
  return waitFor(
    async () => {
      const r = await rollout(id).catch(() => null);
      return r && r.state !== 'running' ? r : null;
    },
    timeoutMs,
    `rollout ${id} to finish`,
    100,
  );
}

async function versionOf(name: string): Promise<string | null> {
  const nodes = (await api('GET', '/api/v1/nodes')).json as Array<{ name: string; agentVersion: string | null }>;
  return nodes.find((n) => n.name === name)?.agentVersion ?? null;
}

/** The pid of the agent a launcher runs now. */
async function agentChild(launcher: DockfleetProcess): Promise<number> {
  const children = (await readFile(`/proc/${launcher.pid}/task/${launcher.pid}/children`, 'utf8')).trim().split(/\s+/);
  assert.equal(children.length, 1, 'the launcher runs one agent');
  return Number(children[0]);
}

/** The agent's (and its launcher's) log records since `from` (an offset in its stderr, where JSON logs go). */
function logSince(agent: DockfleetProcess, from: number): Array<{ msg?: string; version?: string; to?: string }> {
  return agent
    .stderr()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; version?: string; to?: string });
}

/** Waits for a log record with `msg` (and `version`, when given) since `from`. */
function waitForLog(agent: DockfleetProcess, from: number, msg: string, timeoutMs: number, version?: string): Promise<unknown> {
  return waitFor(() => logSince(agent, from).find((r) => r.msg === msg && (version === undefined || r.version === version)), timeoutMs, `${msg} ${version ?? ''}`, 50);
}

/** How often, since `from`, the agent staged `version` to switch to it, and its launcher started it. */
function switches(agent: DockfleetProcess, version: string, from: number): { staged: number; started: number } {
  const log = logSince(agent, from);
  return {
    staged: log.filter((r) => r.msg === 'release verified and installed; switching to it' && r.to === version).length,
    started: log.filter((r) => r.msg === 'agent started' && r.version === version).length,
  };
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-rollouts-'));
  dataDir = join(work, 'hub');
  hubUrl = `https://127.0.0.1:${await freePort()}`;
  const keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  await startHub();
  for (const name of NODES) {
    const code = await api('POST', '/api/v1/enrollments', { name });
    assert.equal(code.status, 201, code.text);
    const agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', code.json.code, '--state', join(work, `state-${name}`), '--docker', NO_ENGINE, '--policy', join(work, 'no-policy.json')], {
      DOCKFLEET_UPGRADE_TRIAL_MS: String(TRIAL_MS),
    });
    agents.set(name, agent);
    await agent.waitForLine(new RegExp(`agent ${name} connected`), 60_000);
  }
  for (const version of [V1, V2, V3]) await publishRelease(dataDir, keyFile, await buildRelease(work, version));
  // A customer granted ra only (operator there), and an operator of the whole fleet.
  const cust = await api('POST', '/api/v1/users', { name: 'cust', role: 'viewer' });
  assert.equal(cust.status, 201, cust.text);
  customerToken = cust.json.token;
  assert.equal((await api('PATCH', '/api/v1/users/cust', { scoped: true })).status, 200);
  assert.equal((await api('POST', '/api/v1/users/cust/grants', { node: 'ra', role: 'operator' })).status, 201);
  const op = await api('POST', '/api/v1/users', { name: 'fleet-op', role: 'operator' });
  assert.equal(op.status, 201, op.text);
  operatorToken = op.json.token;
});

after(async () => {
  for (const agent of agents.values()) {
    // An agent left frozen by a failed test must be able to stop.
    await agentChild(agent)
      .then((pid) => process.kill(pid, 'SIGCONT'))
      .catch(() => {});
    await agent.stop();
  }
  await hubProc?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test('a non-admin cannot start a rollout, and a customer sees only the steps of its own nodes', { timeout: 120_000 }, async () => {
  for (const [who, token] of [
    ['customer', customerToken],
    ['fleet operator', operatorToken],
  ] as const) {
    const refused = await api('POST', '/api/v1/agent-upgrades', { to: V1, parallel: 2 }, token);
    assert.equal(refused.status, 403, `${who}: ${refused.text}`);
    assert.equal(refused.json.error.code, 'forbidden', who);
  }
  assert.deepEqual((await api('GET', '/api/v1/agent-upgrades')).json, [], 'nothing started');
  for (const name of NODES) assert.equal(await versionOf(name), CHECKOUT_VERSION, name);

  // rb goes first, so the customer looks while rb's step is under way and after it ended.
  const started = await api('POST', '/api/v1/agent-upgrades', { to: V1, parallel: 1, nodes: ['rb', 'ra'] });
  assert.equal(started.status, 202, started.text);
  const id = (started.json as Rollout).id;
  const seen = new Set<string>();
  const customerLooks = async (): Promise<void> => {
    for (const path of ['/api/v1/agent-upgrades', `/api/v1/agent-upgrades/${id}`]) {
      const res = await api('GET', path, undefined, customerToken);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.ok(!res.text.includes('rb'), `${path} names the other node: ${res.text}`);
      const view = (Array.isArray(res.json) ? res.json[0] : res.json) as Rollout;
      assert.deepEqual(
        view.nodes.map((n) => n.node),
        ['ra'],
        path,
      );
      seen.add(view.nodes[0]!.state);
    }
  };
  const done = await waitFor(
    async () => {
      await customerLooks();
      const r = await rollout(id);
      return r.state !== 'running' ? r : null;
    },
    90_000,
    'the first rollout to finish',
    100,
  );
  await customerLooks();
  assert.equal(done.state, 'succeeded', JSON.stringify(done.nodes));
  assert.deepEqual(
    done.nodes.map((n) => [n.node, n.wave, n.state]),
    [
      ['rb', 1, 'succeeded'],
      ['ra', 2, 'succeeded'],
    ],
  );
  assert.ok(seen.has('waiting') && seen.has('succeeded'), `the customer watched ra's step move on: ${[...seen]}`);
  const mine = (await api('GET', `/api/v1/agent-upgrades/${id}`, undefined, customerToken)).json as Rollout;
  assert.deepEqual([mine.state, mine.nodes[0]!.state, mine.nodes[0]!.from], ['succeeded', 'succeeded', CHECKOUT_VERSION]);

  // A rollout of rb alone: absent for the customer, with the answer an unknown id gets.
  const other = await api('POST', '/api/v1/agent-upgrades', { to: V1, nodes: ['rb'] });
  assert.equal(other.status, 202, other.text);
  const otherId = (other.json as Rollout).id;
  assert.equal((await finished(otherId)).state, 'succeeded');
  const hidden = await api('GET', `/api/v1/agent-upgrades/${otherId}`, undefined, customerToken);
  const unknown = await api('GET', '/api/v1/agent-upgrades/00000000-0000-4000-8000-000000000000', undefined, customerToken);
  assert.equal(hidden.status, 404, hidden.text);
  assert.deepEqual(hidden.json, unknown.json);
  const list = await api('GET', '/api/v1/agent-upgrades', undefined, customerToken);
  assert.deepEqual(
    (list.json as Rollout[]).map((r) => r.id),
    [id],
  );
  assert.ok(!list.text.includes('rb'), list.text);
  // The fleet operator (no node scope) reads every step.
  const all = await api('GET', '/api/v1/agent-upgrades', undefined, operatorToken);
  assert.deepEqual(
    (all.json as Rollout[]).map((r) => r.nodes.map((n) => n.node)),
    [['rb'], ['rb', 'ra']],
  );
});

test('the hub SIGKILLed with a node in sending hands the release over again once it is back: one switch, the rollout completes', { timeout: 150_000 }, async () => {
  const ra = agents.get('ra')!;
  const rb = agents.get('rb')!;
  const [raFrom, rbFrom] = [ra.stderr().length, rb.stderr().length];
  // ra's agent is frozen: its link stays up, so the hub marks it sending and waits on its answer.
  const frozen = await agentChild(ra);
  process.kill(frozen, 'SIGSTOP');
  let id: string;
  try {
    const started = await api('POST', '/api/v1/agent-upgrades', { to: V2, parallel: 1, nodes: NODES });
    assert.equal(started.status, 202, started.text);
    id = (started.json as Rollout).id;
    await waitFor(async () => (await rollout(id)).nodes[0]?.state === 'sending', 20_000, 'ra in sending', 10);
    hubProc!.signal('SIGKILL');
    await hubProc!.exited;
  } finally {
    process.kill(frozen, 'SIGCONT');
  }
  await startHub();
  const done = await finished(id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done.nodes));
  assert.deepEqual(
    done.nodes.map((n) => [n.node, n.state, n.from]),
    [
      ['ra', 'succeeded', V1],
      ['rb', 'succeeded', V1],
    ],
  );
  for (const name of NODES) assert.equal(await versionOf(name), V2, name);
  // Each agent switched to V2 exactly once.
  await waitForLog(ra, raFrom, 'new version connected; upgrade kept', 10_000);
  assert.deepEqual(switches(ra, V2, raFrom), { staged: 1, started: 1 }, ra.stderr().slice(raFrom));
  assert.deepEqual(switches(rb, V2, rbFrom), { staged: 1, started: 1 });
  assert.equal(JSON.parse(await readFile(join(work, 'state-ra', 'current.json'), 'utf8')).version, V2);
  const result = JSON.parse(await readFile(join(work, 'state-ra', 'upgrade-result.json'), 'utf8'));
  assert.deepEqual([result.from, result.to, result.ok], [V1, V2, true]);
  // One agent-upgrade job per node for this rollout, each succeeded.
  const jobs = (await api('GET', '/api/v1/jobs?limit=1000')).json as Array<{ kind: string; node: string; state: string }>;
  const upgrades = jobs.filter((j) => j.kind === 'agent-upgrade');
  assert.equal(upgrades.length, 2 + 1 + 2, 'two rollouts of two nodes and one of one');
  assert.ok(
    upgrades.every((j) => j.state === 'succeeded'),
    JSON.stringify(upgrades),
  );
});

test('an agent that restarted into the new version while the hub was down is marked done on reconnect, not sent the release again', { timeout: 150_000 }, async () => {
  const ra = agents.get('ra')!;
  const raFrom = ra.stderr().length;
  const started = await api('POST', '/api/v1/agent-upgrades', { to: V3, nodes: ['ra'] });
  assert.equal(started.status, 202, started.text);
  const id = (started.json as Rollout).id;
  await waitFor(async () => (await rollout(id)).nodes[0]?.state === 'restarting', 30_000, 'ra restarting', 10);
  hubProc!.signal('SIGKILL');
  await hubProc!.exited;
  // The new version starts with no hub to reach; the hub comes back within its trial.
  await waitForLog(ra, raFrom, 'agent started', 30_000, V3);
  await startHub();
  const done = await finished(id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done.nodes));
  assert.deepEqual(
    done.nodes.map((n) => [n.node, n.state, n.from, n.reason]),
    [['ra', 'succeeded', V2, null]],
  );
  assert.equal(await versionOf('ra'), V3);
  await waitForLog(ra, raFrom, 'new version connected; upgrade kept', 10_000);
  assert.deepEqual(switches(ra, V3, raFrom), { staged: 1, started: 1 }, ra.stderr().slice(raFrom));
  const result = JSON.parse(await readFile(join(work, 'state-ra', 'upgrade-result.json'), 'utf8'));
  assert.deepEqual([result.from, result.to, result.ok], [V2, V3, true]);
});
