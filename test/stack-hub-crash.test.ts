/** The hub SIGKILLed with a rollout half-way and a job queued behind a running one: a hub
 * process on a fixed port, two real agent processes on their own private engines. After the
 * restart the rollout resumes and completes, the queued job runs, and no job ran twice (the
 * hub's job list and each agent's ledger say so). */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { BUSYBOX_IMAGE, engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let engines: TestEngine[] = [];
let hubProc: DockfleetProcess | undefined;
const agents: DockfleetProcess[] = [];
let work: string;
let hubDir: string;
let hubUrl: string;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}
async function cli(...args: string[]): Promise<CliResult> {
  const p = spawnDockfleet([...args, '--data', hubDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const lastLine = (r: CliResult): string => r.stdout.trimEnd().split('\n').at(-1)!;

async function startHub(): Promise<void> {
  hubProc = spawnDockfleet(['hub', '--data', hubDir, '--listen', hubUrl.replace('https://', '')]);
  await hubProc.waitForLine(/^hub ready /, 30_000);
}

async function jobState(id: string): Promise<string> {
  const r = await cli('job', 'show', id, '--json');
  return r.code === 0 ? (JSON.parse(r.stdout) as { state: string }).state : `unreadable: ${r.stderr}`;
}

/** No healthcheck: the gate waits the 10 s stable window, long enough to kill the hub inside it. */
async function composeFile(name: string, service: string): Promise<string> {
  const path = join(work, `${name}.yml`);
  await writeFile(path, ['services:', `  ${service}:`, `    image: ${BUSYBOX_IMAGE}`, "    command: ['sleep', '3600']", ''].join('\n'));
  return path;
}

before(async () => {
  engines = await startEngines(2, { prefix: 'hubcrash' });
  work = await mkdtemp(join(tmpdir(), 'dockfleet-hub-crash-'));
  hubDir = join(work, 'hub');
  hubUrl = `https://127.0.0.1:${await freePort()}`;
  await startHub();
  for (const [i, engine] of engines.entries()) {
    const name = `c${i + 1}`;
    const code = lastLine(await cli('enroll', name));
    const agent = spawnDockfleet(['agent', '--hub', hubUrl, '--code', code, '--state', join(work, `agent-${name}`), '--docker', engine.dockerHost, '--policy', join(work, 'no-policy.json')]);
    await agent.waitForLine(new RegExp(`agent ${name} connected`), 30_000);
    agents.push(agent);
    assert.equal((await cli('label', name, 'pool=a')).code, 0);
  }
});

after(async () => {
  for (const a of agents) await a.stop();
  await hubProc?.stop();
  if (engines.length > 0) await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

test('a hub SIGKILLed mid-rollout, with a job queued, resumes and completes after a restart; no job runs twice', { timeout: 240_000 }, async () => {
  const deploy = await cli('stack', 'deploy', 'pool', '-f', await composeFile('pool', 'app'), '--selector', 'pool=a', '--parallel', '1');
  assert.equal(deploy.code, 0, deploy.stderr);
  const firstJob = lastLine(deploy);
  const queued = await cli('stack', 'deploy', 'side', '-f', await composeFile('side', 'cache'), '--node', 'c1');
  assert.equal(queued.code, 0, queued.stderr);
  const sideJob = lastLine(queued);
  await waitFor(async () => (await jobState(firstJob)) === 'running', 30_000, 'the first wave running', 200);
  assert.equal(await jobState(sideJob), 'queued', 'one job at a time per node: the second waits');

  hubProc!.signal('SIGKILL');
  await hubProc!.exited;
  await new Promise((r) => setTimeout(r, 1_000));
  await startHub();

  const done = await waitFor(
    async () => {
      const r = await cli('stack', 'ls', '--json');
      if (r.code !== 0) return null;
      const pool = (JSON.parse(r.stdout) as Array<{ name: string; nodes: Array<{ node: string; revision: number; status: string }> }>).find((s) => s.name === 'pool');
      return pool && pool.nodes.length === 2 && pool.nodes.every((n) => n.status === 'healthy') ? pool : null;
    },
    120_000,
    'the rollout completed on both nodes',
    1_000,
  );
  assert.deepEqual(
    done.nodes.map((n) => [n.node, n.revision]),
    [
      ['c1', 1],
      ['c2', 1],
    ],
  );
  await waitFor(async () => (await jobState(sideJob)) === 'succeeded', 60_000, 'the queued job ran', 500);

  const poolJobs = JSON.parse((await cli('jobs', '--stack', 'pool', '--json')).stdout) as Array<{ node: string; state: string }>;
  assert.deepEqual(
    poolJobs.map((j) => [j.node, j.state]).sort(),
    [
      ['c1', 'succeeded'],
      ['c2', 'succeeded'],
    ],
    'one job per node',
  );
  for (const [i, engine] of engines.entries()) {
    const filters = encodeURIComponent(JSON.stringify({ label: ['com.docker.compose.project=pool'] }));
    const list = (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json as Array<{ State: string }>;
    assert.deepEqual(
      list.map((c) => c.State),
      ['running'],
      `c${i + 1} runs the stack once`,
    );
    const dir = join(work, `agent-c${i + 1}`, 'jobs');
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.json'))) {
      const record = JSON.parse(await readFile(join(dir, file), 'utf8')) as { request: { id: string }; runs: number };
      assert.equal(record.runs, 1, `job ${record.request.id} ran ${record.runs} times on c${i + 1}`);
    }
  }
});
