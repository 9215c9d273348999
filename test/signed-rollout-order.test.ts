/**
 * A signed rollout keeps its order (issue 13): with `sign`, the hub files every job of a
 * `--parallel 1` rollout at once, awaiting its signature, and answers each job's exact signed
 * body; signing them all at once delivers only the first wave, and the second node's job goes
 * only after the first node's succeeded (held until its turn, although signed). A job's intent
 * must match the job (another body is refused by the hub with its reason). Real hub, two agent
 * channels whose job answers the test writes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { IntentSigner, generateOperatorKey } from '../src/lib/intent-keys.ts';
import { jobOp } from '../src/protocol/intent.ts';
import { beginEvents, send, startJobAgent, succeed, type JobAgent } from './support/job-agent.ts';
import type { JobRequest } from '../src/protocol/jobs.ts';
import type { Http2ServerResponse } from 'node:http2';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';

let hub: TestHub;
const agents: JobAgent[] = [];
const signer = new IntentSigner(generateOperatorKey().privateKeyPem);
const finishedAt = new Map<string, number>();

before(async () => {
  hub = await startTestHub();
  for (const name of ['wave-a', 'wave-b', 'wave-c']) {
    const agent = await startJobAgent({
      hubUrl: hub.url,
      code: await mintCode(hub, name),
      answer: async (job, res) => {
        await new Promise((r) => setTimeout(r, 400));
        if (job.stack === 'stops' && job.node === 'wave-a') fail(job, res);
        else succeed(job, res);
        finishedAt.set(job.node, performance.now());
      },
    });
    await agent.waitConnected();
    agents.push(agent);
  }
});

after(async () => {
  for (const a of agents) await a.stop();
  await hub?.stop();
});

/** The host's answer to a job that could not be applied. */
function fail(job: JobRequest, res: Http2ServerResponse): void {
  const at = Date.now();
  beginEvents(res);
  send(res, { t: 'accepted', at });
  send(res, { t: 'done', result: { state: 'failed', error: 'the test host refuses this one', revision: job.target?.revision ?? 0, rolledBack: false, startedAt: at, finishedAt: Date.now() } });
  res.end();
}

const compose = "services:\n  web:\n    image: busybox:latest\n    command: ['sleep', '3600']\n";
const sha = (text: string): string => `sha256:${createHash('sha256').update(text).digest('hex')}`;

test('sign: every job filed awaiting its signature; signed all at once, the second wave still waits for the first', { timeout: 30_000 }, async () => {
  const res = await hub.api('POST', '/api/v1/stacks/ordered/deploy', { compose, target: { nodes: ['wave-a', 'wave-b'] }, parallel: 1, sign: true });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  const signing = res.json.signing as { kind: string; parallel: number; nodes: string[]; jobs: Array<{ id: string; node: string; signedBody: string }> };
  assert.deepEqual([signing.kind, signing.parallel, signing.nodes], ['deploy', 1, ['wave-a', 'wave-b']]);
  assert.deepEqual(
    signing.jobs.map((j) => j.node),
    ['wave-a', 'wave-b'],
  );
  const states = async (): Promise<string[]> => Promise.all(signing.jobs.map(async (j) => (await hub.api('GET', `/api/v1/jobs/${j.id}`)).json.state as string));
  assert.deepEqual(await states(), ['awaiting-signature', 'awaiting-signature']);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(agents[0]!.deliveries.length + agents[1]!.deliveries.length, 0, 'nothing delivered before it is signed');

  // An intent over another body is refused by the hub with its reason, and changes nothing.
  const [a, b] = signing.jobs as [(typeof signing.jobs)[0], (typeof signing.jobs)[0]];
  const wrong = await hub.api('POST', `/api/v1/jobs/${a.id}/intent`, { intent: signer.intent('wave-a', jobOp('deploy'), sha(b.signedBody)).wire });
  assert.equal(wrong.status, 400);
  assert.match(wrong.json.error.message, /signs another job body/);

  // Both signed now, the second first.
  for (const job of [b, a]) {
    const ok = await hub.api('POST', `/api/v1/jobs/${job.id}/intent`, { intent: signer.intent(job.node, jobOp('deploy'), sha(job.signedBody), 300_000).wire });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  }
  await waitFor(() => agents[1]!.deliveries.length > 0, 10_000, 'the second wave delivered');
  const bArrived = agents[1]!.deliveries[0]!.at;
  assert.ok(finishedAt.has('wave-a') && bArrived >= finishedAt.get('wave-a')!, 'wave-b got its job only after wave-a succeeded');
  assert.equal(agents[0]!.deliveries[0]!.job.intent !== undefined, true, 'the job carries its intent to the host');
  await waitFor(async () => (await states()).every((s) => s === 'succeeded'), 10_000, 'both succeeded');
});

test('a signed rollout that stops at a failed node drops its later, already signed jobs at once, and never delivers them', { timeout: 30_000 }, async () => {
  const res = await hub.api('POST', '/api/v1/stacks/stops/deploy', { compose, target: { nodes: ['wave-a', 'wave-b', 'wave-c'] }, parallel: 1, sign: true });
  assert.equal(res.status, 202, JSON.stringify(res.json));
  const jobs = (res.json.signing as { jobs: Array<{ id: string; node: string; signedBody: string }> }).jobs;
  const before = agents.map((a) => a.deliveries.length);
  for (const job of jobs) {
    const ok = await hub.api('POST', `/api/v1/jobs/${job.id}/intent`, { intent: signer.intent(job.node, jobOp('deploy'), sha(job.signedBody), 300_000).wire });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  }
  const view = async (id: string): Promise<{ state: string; errorCode: string | null; error: string | null }> => (await hub.api('GET', `/api/v1/jobs/${id}`)).json;
  // wave-a fails after 400 ms; the two held jobs must not wait out their signatures' five minutes.
  const started = performance.now();
  await waitFor(async () => (await Promise.all(jobs.map((j) => view(j.id)))).every((j) => j.state === 'failed'), 5_000, 'all three jobs failed');
  assert.ok(performance.now() - started < 5_000);
  for (const job of jobs.slice(1)) {
    const v = await view(job.id);
    assert.equal(v.errorCode, 'rollout_stopped', JSON.stringify(v));
    assert.match(String(v.error), /the rollout stopped at wave-a before this node's turn/);
  }
  const rollout = (await hub.api('GET', '/api/v1/stacks/stops')).json;
  assert.match(JSON.stringify(rollout), /wave-a/);
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(
    agents.map((a, i) => a.deliveries.length - before[i]!),
    [1, 0, 0],
    'only wave-a ever got its job',
  );
});
