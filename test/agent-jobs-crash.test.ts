/** An agent SIGKILLed mid-job finishes the job when it starts again — before, and without, the
 * hub — and then answers the hub's next delivery from its ledger without running it a third
 * time. The job's secret is sealed on disk (never plaintext) and the resumed run gets it back. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { JobEvent } from '../src/protocol/jobs.ts';
import { mintCode, startTestHub, waitFor, type TestHub, removeHubData } from './support/hub-fixture.ts';
import { deliver, makeJob, resultOf } from './support/job-kit.ts';
import { freePort } from './support/processes.ts';

const ENTRY = fileURLToPath(new URL('./support/job-agent-entry.ts', import.meta.url));
const NODE = 'crashy';
const SECRET = 'crash-test-S3CRET-token-77';
const started = new Set<ChildProcess>();
const dirs: string[] = [];
let hub: TestHub | null = null;

after(async () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await hub?.stop();
  for (const dir of dirs) await removeHubData(dir);
});

function startAgentProcess(settings: Record<string, unknown>): { child: ChildProcess; output: () => string; exited: Promise<unknown> } {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
    env: { ...process.env, DOCKFLEET_TEST_JOB_AGENT: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, output: () => out, exited };
}

async function stateHolds(dir: string, needle: string): Promise<string | null> {
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) return path;
  }
  return null;
}

test('an agent SIGKILLed mid-job finishes it on its next start without the hub, and never runs it a third time', async () => {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'dockfleet-crash-hub-'));
  const state = await mkdtemp(join(tmpdir(), 'dockfleet-crash-agent-'));
  const markers = await mkdtemp(join(tmpdir(), 'dockfleet-crash-markers-'));
  dirs.push(dataDir, state, markers);
  hub = await startTestHub({ dataDir, port });
  const settings = { hub: hub.url, name: NODE, state, markers, stepMs: 800 };
  const first = startAgentProcess({ ...settings, code: await mintCode(hub, NODE) });
  await waitFor(() => first.output().includes(`connected ${NODE}`), 20_000, 'the first agent process to connect');

  const job = makeJob(NODE, { secrets: { env: { API_TOKEN: SECRET }, files: {} } });
  const heard: JobEvent[] = [];
  const delivery = deliver(hub, NODE, job, { onEvent: (e) => heard.push(e) }).catch(() => null);
  const markerNames = async (): Promise<string[]> => readdir(markers);
  await waitFor(async () => (await markerNames()).some((n) => n.startsWith(`${job.id}.apply.start.`)), 10_000, 'the job to reach its apply step');
  assert.equal(heard[0]?.t, 'accepted');
  assert.equal(await stateHolds(state, SECRET), null, 'the secret is in the state dir while the job runs');
  first.child.kill('SIGKILL');
  await first.exited;
  await delivery;
  assert.ok(!(await markerNames()).includes(`${job.id}.gate.done`), 'the job had not finished when the agent was killed');

  // The hub is down too: the agent must finish the job on its own.
  await hub.stop({ keepData: true });
  hub = null;
  const second = startAgentProcess(settings);
  await waitFor(async () => (await markerNames()).includes(`${job.id}.gate.done`), 20_000, 'the restarted agent to finish the job');
  const names = await markerNames();
  const resumedRun = JSON.parse(await readFile(join(markers, `${job.id}.run.2`), 'utf8'));
  assert.equal(resumedRun.resumed, true);
  assert.equal(resumedRun.secretHash, createHash('sha256').update(SECRET).digest('hex'), 'the resumed run got the secret back');
  assert.equal(names.filter((n) => n.startsWith(`${job.id}.snapshot.start.`)).length, 1, 'a step done before the crash is not redone');
  assert.equal(names.filter((n) => n.startsWith(`${job.id}.apply.start.`)).length, 2, 'the interrupted step is run again');
  const record = await waitFor(
    async () => {
      const r = JSON.parse(await readFile(join(state, 'jobs', `${job.id}.json`), 'utf8'));
      return r.state === 'finished' ? r : null;
    },
    5_000,
    'the ledger to record the result',
  );
  assert.equal(record.runs, 2);
  assert.equal(record.result.state, 'succeeded');
  assert.equal(record.sealed, null, 'a finished job keeps no secrets, not even sealed');

  // The hub returns and delivers the job again: answered from the ledger, not run.
  hub = await startTestHub({ dataDir, port });
  await waitFor(() => second.output().includes(`connected ${NODE}`), 20_000, 'the restarted agent to reconnect');
  const again = await deliver(hub, NODE, job);
  assert.deepEqual(
    again.events.map((e) => e.t),
    ['accepted', 'done'],
  );
  assert.equal(resultOf(again)?.state, 'succeeded');
  assert.equal((await markerNames()).filter((n) => n.startsWith(`${job.id}.run.`)).length, 2, 'never run a third time');
  assert.equal(await stateHolds(state, SECRET), null, 'the secret is in the state dir');
  second.child.kill('SIGTERM');
  await second.exited;
});
