/** The agent's jobs over a real channel (real hub, real agent, the hub's own link carrying
 * POST JOBS_PATH): a job runs once and streams accepted, steps, logs, done; delivering it again
 * (after it is done, and while it runs) never runs it twice; refusals (expired, another node's,
 * malformed) come with their codes; the hub going away does not stop a job; one job per stack
 * at a time; secrets never reach the state dir, the log lines or the error. */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { JobEvent } from '../src/protocol/jobs.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { ScriptedRunner, deliver, makeJob, resultOf, startJobAgent, type JobTestAgent } from './support/job-kit.ts';

const NODE = 'jobs-1';
const SECRET = 'hunter2-s3cr3t-Value';
const FILE_SECRET_LINE = 'BEGIN-PRIVATE-material-0042';

let hub: TestHub;
let agent: JobTestAgent;
const runner = new ScriptedRunner({
  shop: { steps: ['snapshot', 'apply'], stepMs: 20, say: ['pulling images'] },
  slow: { steps: ['snapshot', 'apply', 'gate'], stepMs: 400 },
  queue: { steps: ['apply'], stepMs: 300 },
  leaky: { steps: ['snapshot', 'fail'], stepMs: 10, say: [`token is ${SECRET}`, `file says ${FILE_SECRET_LINE}`], error: `gate failed for web: env API_TOKEN=${SECRET}` },
  thrower: { steps: ['apply'], stepMs: 10, throws: `runner crashed holding ${SECRET}` },
});

before(async () => {
  hub = await startTestHub();
  agent = await startJobAgent({ hubUrl: hub.url, code: await mintCode(hub, NODE), name: NODE, runner });
  await agent.waitConnected();
});

after(async () => {
  await agent?.stop();
  await hub?.stop();
});

function kinds(events: JobEvent[]): string[] {
  return events.map((e) => (e.t === 'step' ? `step:${e.step.name}:${e.step.state}` : e.t));
}

function callsOf(id: string): number {
  return runner.calls.filter((c) => c.id === id).length;
}

test('a delivered job runs once and answers accepted, its steps and log lines as they happen, then done', async () => {
  const job = makeJob(NODE);
  const answer = await deliver(hub, NODE, job);
  assert.equal(answer.status, 200);
  assert.equal(answer.contentType, 'application/x-ndjson');
  assert.deepEqual(kinds(answer.events), ['accepted', 'log', 'step:snapshot:running', 'step:snapshot:succeeded', 'step:apply:running', 'step:apply:succeeded', 'done']);
  const log = answer.events.find((e) => e.t === 'log');
  assert.equal(log?.t === 'log' && log.line, 'pulling images');
  const result = resultOf(answer);
  assert.equal(result?.state, 'succeeded');
  assert.equal(result?.revision, 1);
  assert.equal(callsOf(job.id), 1);
  // The ledger holds it, finished, with its steps.
  const record = JSON.parse(await readFile(join(agent.stateDir, 'jobs', `${job.id}.json`), 'utf8'));
  assert.equal(record.state, 'finished');
  assert.deepEqual(
    record.steps.map((s: { name: string; state: string }) => `${s.name}:${s.state}`),
    ['snapshot:succeeded', 'apply:succeeded'],
  );
});

test('the same job delivered again after it is done is answered from the ledger, not run again', async () => {
  const job = makeJob(NODE);
  const first = resultOf(await deliver(hub, NODE, job));
  const again = await deliver(hub, NODE, job);
  assert.deepEqual(kinds(again.events), ['accepted', 'done']);
  assert.deepEqual(resultOf(again), first);
  assert.equal(callsOf(job.id), 1);
});

test('the same job delivered while it runs joins the run: both deliveries get done, it runs once', async () => {
  const job = makeJob(NODE, { stack: 'slow' });
  const firstEvents: JobEvent[] = [];
  const first = deliver(hub, NODE, job, { onEvent: (e) => firstEvents.push(e) });
  await waitFor(() => firstEvents.some((e) => e.t === 'step' && e.step.name === 'apply'), 5_000, 'the first delivery to reach the apply step');
  const second = await deliver(hub, NODE, job);
  const firstAnswer = await first;
  assert.equal(callsOf(job.id), 1);
  assert.equal(resultOf(firstAnswer)?.state, 'succeeded');
  assert.deepEqual(resultOf(second), resultOf(firstAnswer));
  // The joiner heard each step's latest state on joining, and the steps after it live.
  assert.equal(second.events[0]?.t, 'accepted');
  assert.ok(kinds(second.events).includes('step:gate:succeeded'), kinds(second.events).join(' '));
});

test('an expired job is refused with job_expired and not run', async () => {
  const job = makeJob(NODE, { expiresAt: Date.now() - 1_000 });
  const answer = await deliver(hub, NODE, job);
  assert.equal(answer.events.length, 1);
  const [event] = answer.events;
  assert.equal(event?.t === 'refused' && event.code, 'job_expired');
  assert.equal(callsOf(job.id), 0);
  await assert.rejects(readFile(join(agent.stateDir, 'jobs', `${job.id}.json`)), { code: 'ENOENT' });
});

test('a job for another node is refused with job_misdirected and not run', async () => {
  const job = makeJob('some-other-node');
  const answer = await deliver(hub, NODE, job);
  const [event] = answer.events;
  assert.equal(event?.t === 'refused' && event.code, 'job_misdirected');
  assert.equal(callsOf(job.id), 0);
});

test('malformed bodies are refused with a clear code', async () => {
  const notJson = await deliver(hub, NODE, null, { raw: Buffer.from('{"id": "job_') });
  assert.equal(notJson.events[0]?.t === 'refused' && notJson.events[0].code, 'validation_failed');
  const { secrets: _s, ...noSecrets } = makeJob(NODE);
  const wrongShape = await deliver(hub, NODE, { ...noSecrets, extra: 1 });
  const refusal = wrongShape.events[0];
  assert.equal(refusal?.t === 'refused' && refusal.code, 'validation_failed');
  assert.match(refusal?.t === 'refused' ? refusal.message : '', /secrets|extra/);
  const tooBig = await deliver(hub, NODE, null, { raw: Buffer.alloc(4 * 1024 * 1024 + 10, 0x20) });
  assert.equal(tooBig.events[0]?.t === 'refused' && tooBig.events[0].code, 'payload_too_large');
});

test('the hub going away mid-job does not stop it; the next delivery gets the result', async () => {
  const job = makeJob(NODE, { stack: 'slow' });
  const cancel = new AbortController();
  const firstEvents: JobEvent[] = [];
  const first = deliver(hub, NODE, job, { signal: cancel.signal, onEvent: (e) => firstEvents.push(e) });
  await waitFor(() => firstEvents.some((e) => e.t === 'step'), 5_000, 'the job to start a step');
  cancel.abort();
  const cut = await first.catch(() => null);
  assert.ok(!cut || !resultOf(cut), 'the cancelled delivery did not see the end');
  await waitFor(
    async () => {
      const text = await readFile(join(agent.stateDir, 'jobs', `${job.id}.json`), 'utf8');
      return JSON.parse(text).state === 'finished';
    },
    5_000,
    'the job to finish with nobody listening',
  );
  const again = await deliver(hub, NODE, job);
  assert.deepEqual(kinds(again.events), ['accepted', 'done']);
  assert.equal(resultOf(again)?.state, 'succeeded');
  assert.equal(callsOf(job.id), 1);
});

test('two jobs for the same stack run one after the other; another stack does not wait', async () => {
  const a = makeJob(NODE, { stack: 'queue' });
  const b = makeJob(NODE, { stack: 'queue' });
  const other = makeJob(NODE, { stack: 'shop' });
  const answers = await Promise.all([deliver(hub, NODE, a), deliver(hub, NODE, b), deliver(hub, NODE, other)]);
  for (const answer of answers) assert.equal(resultOf(answer)?.state, 'succeeded');
  const [ca, cb, co] = [a, b, other].map((j) => runner.calls.find((c) => c.id === j.id)!);
  const [firstQ, secondQ] = ca!.startedAt <= cb!.startedAt ? [ca!, cb!] : [cb!, ca!];
  assert.ok(secondQ.startedAt >= firstQ.finishedAt!, 'the second job for the stack started after the first finished');
  assert.ok(co!.startedAt < firstQ.finishedAt!, 'a job for another stack ran meanwhile');
});

test('secrets never reach the state dir, the log lines or the error; a runner that throws fails the job', async () => {
  const secrets = { env: { API_TOKEN: SECRET }, files: { 'tls.key': Buffer.from(`${FILE_SECRET_LINE}\n`).toString('base64') } };
  const leaky = makeJob(NODE, { stack: 'leaky', secrets });
  const answer = await deliver(hub, NODE, leaky);
  const result = resultOf(answer);
  assert.equal(result?.state, 'failed');
  assert.match(result?.error ?? '', /API_TOKEN=\[secret\]/);
  const lines = answer.events.flatMap((e) => (e.t === 'log' ? [e.line] : []));
  assert.deepEqual(lines, ['token is [secret]', 'file says [secret]']);
  assert.doesNotMatch(JSON.stringify(answer.events), new RegExp(SECRET));

  const thrower = makeJob(NODE, { stack: 'thrower', secrets });
  const thrown = resultOf(await deliver(hub, NODE, thrower));
  assert.equal(thrown?.state, 'failed');
  assert.equal(thrown?.error, 'runner crashed holding [secret]');

  for (const name of await readdir(join(agent.stateDir, 'jobs'))) {
    const text = await readFile(join(agent.stateDir, 'jobs', name), 'utf8');
    assert.ok(!text.includes(SECRET) && !text.includes(FILE_SECRET_LINE) && !text.includes(secrets.files['tls.key']), `a secret in ${name}`);
  }
});
