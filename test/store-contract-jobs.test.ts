/** The job store's contract, on SQLite and on PostgreSQL: filing by idempotency key, the state
 * machine's compare-and-set transitions, listing order, bounded progress, pruning; and on
 * PostgreSQL, two replicas on one database filing one key or claiming one job at once. */
import assert from 'node:assert/strict';
import { PostgresJobStore } from '../src/store/postgres/postgres-job-store.ts';
import { SqliteJobStore } from '../src/store/sqlite/sqlite-job-store.ts';
import { type JobRecord, type JobStore, MAX_JOB_LOG_LINE_BYTES, MAX_JOB_LOG_LINES, MAX_JOB_STEPS } from '../src/store/job-store.ts';
import { storeContract } from './support/store-contract.ts';

const jobs = storeContract<JobStore>('jobs', { sqlite: (db) => new SqliteJobStore(db), postgres: (db) => new PostgresJobStore(db) });

let serial = 0;
function job(over: Partial<JobRecord> = {}): JobRecord {
  serial++;
  const id = `job_${String(serial).padStart(20, '0')}`;
  return {
    id,
    kind: 'deploy',
    node: 'n1',
    stack: 'web',
    revision: 1,
    idempotencyKey: `key-${id}`,
    state: 'queued',
    request: '{"target":"x"}',
    secrets: 'sealed',
    createdBy: 'admin',
    createdAt: 1_800_000_000_000 + serial,
    expiresAt: 1_800_000_900_000 + serial,
    startedAt: null,
    finishedAt: null,
    result: null,
    errorCode: null,
    error: null,
    attempts: 0,
    deliveredAt: null,
    deliveryError: null,
    logsDropped: 0,
    intent: null,
    held: false,
    signBy: null,
    ...over,
  };
}

const ids = (list: JobRecord[]): string[] => list.map((j) => j.id);

jobs.test('insert stores every field and reads it back; a repeated key returns the first job', async (store) => {
  const first = job({ revision: null, held: true, signBy: 1_800_000_123_456, intent: 'signed', state: 'awaiting-signature', kind: 'remove' });
  const a = await store.insertJob(first);
  assert.equal(a.inserted, true);
  assert.deepEqual(a.job, first);
  assert.deepEqual(await store.getJob(first.id), first);
  const again = await store.insertJob(job({ idempotencyKey: first.idempotencyKey, node: 'other' }));
  assert.equal(again.inserted, false);
  assert.deepEqual(again.job, first);
  assert.equal((await store.listJobs({ limit: 10 })).length, 1);
  assert.equal(await store.getJob('job_missing000000000000000'), null);
});

jobs.test('a second job with a taken id but a new key is refused', async (store) => {
  const first = job();
  await store.insertJob(first);
  await assert.rejects(store.insertJob(job({ id: first.id })));
});

jobs.test('listJobs: newest first, filtered by node and stack, limited', async (store) => {
  const a = job({ node: 'n1', stack: 'web' });
  const b = job({ node: 'n2', stack: 'web' });
  const c = job({ node: 'n1', stack: 'db' });
  for (const j of [a, b, c]) await store.insertJob(j);
  assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [c.id, b.id, a.id]);
  assert.deepEqual(ids(await store.listJobs({ node: 'n1', limit: 10 })), [c.id, a.id]);
  assert.deepEqual(ids(await store.listJobs({ stack: 'web', limit: 10 })), [b.id, a.id]);
  assert.deepEqual(ids(await store.listJobs({ node: 'n1', stack: 'web', limit: 10 })), [a.id]);
  assert.deepEqual(ids(await store.listJobs({ limit: 2 })), [c.id, b.id]);
  assert.deepEqual(await store.listJobs({ node: 'nobody', limit: 10 }), []);
});

jobs.test('openJobs: queued and running, not held, oldest first, of one node or all', async (store) => {
  const queued = job({ node: 'n1' });
  const running = job({ node: 'n2', state: 'running', startedAt: 5 });
  const held = job({ node: 'n1', held: true });
  const awaiting = job({ node: 'n1', state: 'awaiting-signature' });
  const done = job({ node: 'n1', state: 'succeeded', finishedAt: 9 });
  for (const j of [queued, running, held, awaiting, done]) await store.insertJob(j);
  assert.deepEqual(ids(await store.openJobs()), [queued.id, running.id]);
  assert.deepEqual(ids(await store.openJobs('n1')), [queued.id]);
  assert.deepEqual(await store.openJobs('nobody'), []);
});

jobs.test('signing: awaiting jobs and held queued ones, oldest first; attachIntent and release', async (store) => {
  const awaiting = job({ state: 'awaiting-signature', signBy: 100 });
  const held = job({ held: true });
  const heldAwaiting = job({ state: 'awaiting-signature', held: true });
  const plain = job();
  for (const j of [awaiting, held, heldAwaiting, plain]) await store.insertJob(j);
  assert.deepEqual(ids(await store.signingJobs()), [awaiting.id, held.id, heldAwaiting.id]);

  assert.equal(await store.attachIntent(awaiting.id, 'intent-a'), true);
  const signed = await store.getJob(awaiting.id);
  assert.equal(signed?.state, 'queued');
  assert.equal(signed?.intent, 'intent-a');
  assert.equal(signed?.signBy, null);
  assert.equal(await store.attachIntent(awaiting.id, 'again'), false, 'only an awaiting job takes an intent');
  assert.equal(await store.attachIntent(plain.id, 'x'), false);
  assert.equal(await store.attachIntent('job_missing000000000000000', 'x'), false);

  await store.release(held.id);
  assert.equal((await store.getJob(held.id))?.held, false);
  await store.release(held.id); // twice is harmless
  await store.release('job_missing000000000000000');
  assert.deepEqual(ids(await store.signingJobs()), [heldAwaiting.id]);
  assert.deepEqual(ids(await store.openJobs()), [awaiting.id, held.id, plain.id]);
});

jobs.test('nextExpiry: the soonest among queued jobs, or null', async (store) => {
  assert.equal(await store.nextExpiry(), null);
  await store.insertJob(job({ expiresAt: 500 }));
  await store.insertJob(job({ expiresAt: 300, state: 'running' }));
  await store.insertJob(job({ expiresAt: 400 }));
  assert.equal(await store.nextExpiry(), 400);
});

jobs.test('delivery bookkeeping: attempts count up, the error is set and cleared', async (store) => {
  const j = job();
  await store.insertJob(j);
  await store.markDelivered(j.id, 10);
  await store.markDelivered(j.id, 20);
  await store.setDeliveryError(j.id, 'agent offline');
  let got = await store.getJob(j.id);
  assert.equal(got?.attempts, 2);
  assert.equal(got?.deliveredAt, 20);
  assert.equal(got?.deliveryError, 'agent offline');
  await store.setDeliveryError(j.id, null);
  got = await store.getJob(j.id);
  assert.equal(got?.deliveryError, null);
});

jobs.test('markRunning only from queued; finishJob only from an open state, once', async (store) => {
  const j = job();
  await store.insertJob(j);
  await store.setDeliveryError(j.id, 'slow');
  assert.equal(await store.markRunning(j.id, 50), true);
  assert.equal(await store.markRunning(j.id, 60), false, 'a running job is not claimed again');
  assert.equal((await store.getJob(j.id))?.startedAt, 50);
  const result = { state: 'succeeded' as const, error: null, revision: 2, rolledBack: false, startedAt: 50, finishedAt: 70 };
  assert.equal(await store.finishJob(j.id, { state: 'succeeded', result, errorCode: null, error: null, at: 70 }), true);
  const done = await store.getJob(j.id);
  assert.equal(done?.state, 'succeeded');
  assert.deepEqual(done?.result, result);
  assert.equal(done?.finishedAt, 70);
  assert.equal(done?.startedAt, 50);
  assert.equal(done?.deliveryError, null);
  assert.equal(await store.finishJob(j.id, { state: 'failed', result: null, errorCode: 'x', error: 'late', at: 80 }), false);
  assert.equal(await store.markRunning(j.id, 90), false);
  assert.equal((await store.getJob(j.id))?.state, 'succeeded');

  const never = job({ state: 'awaiting-signature' });
  await store.insertJob(never);
  assert.equal(await store.markRunning(never.id, 1), false, 'an unsigned job does not run');
  assert.equal(await store.finishJob(never.id, { state: 'failed', result: null, errorCode: 'signature_timeout', error: 'no signature', at: 99 }), true);
  const failed = await store.getJob(never.id);
  assert.equal(failed?.startedAt, 99, 'a job that never started gets its finish as start');
  assert.equal(failed?.errorCode, 'signature_timeout');
  assert.equal(await store.finishJob('job_missing000000000000000', { state: 'failed', result: null, errorCode: null, error: null, at: 1 }), false);
});

jobs.test('recordProgress: steps upsert by name and start, log lines are stored once, in order', async (store) => {
  const j = job();
  await store.insertJob(j);
  await store.recordProgress(
    j.id,
    [
      { name: 'pull', state: 'running', startedAt: 10, finishedAt: null },
      { name: 'up', state: 'running', startedAt: 20, finishedAt: null },
    ],
    [
      { at: 11, line: 'pulling' },
      { at: 12, line: 'pulled' },
      { at: 12, line: 'pulled' },
    ],
  );
  await store.recordProgress(
    j.id,
    [{ name: 'pull', state: 'succeeded', startedAt: 10, finishedAt: 15 }],
    [
      { at: 12, line: 'pulled' },
      { at: 21, line: 'starting' },
    ],
  );
  assert.deepEqual(await store.steps(j.id), [
    { name: 'pull', state: 'succeeded', startedAt: 10, finishedAt: 15 },
    { name: 'up', state: 'running', startedAt: 20, finishedAt: null },
  ]);
  assert.deepEqual(await store.logs(j.id), [
    { at: 11, line: 'pulling' },
    { at: 12, line: 'pulled' },
    { at: 21, line: 'starting' },
  ]);
  assert.equal((await store.getJob(j.id))?.logsDropped, 0);
  assert.deepEqual(await store.steps('job_missing000000000000000'), []);
  assert.deepEqual(await store.logs('job_missing000000000000000'), []);
  await store.recordProgress(j.id, [], []);
  await assert.rejects(store.recordProgress('job_missing000000000000000', [], [{ at: 1, line: 'orphan' }]), 'a line needs its job');
});

jobs.test('recordProgress bounds: long lines are cut on a character, lines past the cap counted, steps past the cap left out', async (store) => {
  const j = job();
  await store.insertJob(j);
  const long = `${'a'.repeat(MAX_JOB_LOG_LINE_BYTES - 1)}é and more`;
  await store.recordProgress(j.id, [], [{ at: 1, line: long }]);
  const [cut] = await store.logs(j.id);
  assert.equal(cut?.line, 'a'.repeat(MAX_JOB_LOG_LINE_BYTES - 1), 'the two-byte character that did not fit is left out whole');

  const many = Array.from({ length: MAX_JOB_LOG_LINES + 4 }, (_, i) => ({ at: 100 + i, line: `line ${i}` }));
  await store.recordProgress(j.id, [], many);
  const lines = await store.logs(j.id);
  assert.equal(lines.length, MAX_JOB_LOG_LINES);
  assert.equal(lines.at(-1)?.line, `line ${MAX_JOB_LOG_LINES - 2}`);
  assert.equal((await store.getJob(j.id))?.logsDropped, 5);
  await store.recordProgress(j.id, [], [{ at: 100, line: 'line 0' }]);
  assert.equal((await store.getJob(j.id))?.logsDropped, 5, 'a replayed line is not counted as dropped');

  const steps = Array.from({ length: MAX_JOB_STEPS + 2 }, (_, i) => ({ name: `s${i}`, state: 'running' as const, startedAt: i, finishedAt: null }));
  await store.recordProgress(j.id, steps, []);
  assert.equal((await store.steps(j.id)).length, MAX_JOB_STEPS);
  await store.recordProgress(j.id, [{ name: 's0', state: 'succeeded', startedAt: 0, finishedAt: 1 }], []);
  assert.deepEqual((await store.steps(j.id))[0], { name: 's0', state: 'succeeded', startedAt: 0, finishedAt: 1 }, 'a known step still updates at the cap');
});

jobs.test('pruneFinished: keeps open jobs, the newest finished ones and recent ones; takes steps and logs along', async (store) => {
  const open = job({ state: 'queued' });
  const finished = [1, 2, 3, 4].map((n) => job({ state: n % 2 ? 'succeeded' : 'failed', finishedAt: n * 100 }));
  for (const j of [open, ...finished]) await store.insertJob(j);
  for (const j of finished) await store.recordProgress(j.id, [{ name: 'up', state: 'succeeded', startedAt: 1, finishedAt: 2 }], [{ at: 1, line: 'x' }]);
  // Keep the newest two; nothing is old enough by age; everything has settled.
  assert.equal(await store.pruneFinished({ keepFinished: 2, finishedBefore: 0, settledBefore: 10_000 }), 2);
  assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [finished[3]?.id, finished[2]?.id, open.id]);
  assert.deepEqual(await store.steps(finished[0]?.id ?? ''), []);
  assert.deepEqual(await store.logs(finished[0]?.id ?? ''), []);
  // Not yet settled: kept whatever the count says.
  assert.equal(await store.pruneFinished({ keepFinished: 0, finishedBefore: 10_000, settledBefore: 250 }), 0);
  // Old enough by age, settled: goes although it is among the newest.
  assert.equal(await store.pruneFinished({ keepFinished: 5, finishedBefore: 350, settledBefore: 10_000 }), 1);
  assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [finished[3]?.id, open.id]);
  assert.equal(await store.pruneFinished({ keepFinished: 1, finishedBefore: 0, settledBefore: 10_000 }), 0, 'the newest is kept');
  assert.equal(await store.pruneFinished({ keepFinished: 1, finishedBefore: 10_000, settledBefore: 10_000 }), 1, 'unless it is old enough');
  assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [open.id]);
});

jobs.test('pruneFinished: among jobs finished in the same millisecond, the newer filed is kept', async (store) => {
  const older = job({ state: 'succeeded', finishedAt: 100 });
  const newer = job({ state: 'succeeded', finishedAt: 100 });
  await store.insertJob(older);
  await store.insertJob(newer);
  assert.equal(await store.pruneFinished({ keepFinished: 1, finishedBefore: 0, settledBefore: 10_000 }), 1);
  assert.deepEqual(ids(await store.listJobs({ limit: 10 })), [newer.id]);
});

jobs.postgresTest('two replicas filing one idempotency key at once get one job', async ({ store, replica }) => {
  const stores = [store, replica(), replica(), replica()];
  for (let round = 0; round < 5; round++) {
    const key = `race-${round}`;
    const answers = await Promise.all(stores.map((s) => s.insertJob(job({ idempotencyKey: key }))));
    assert.equal(answers.filter((a) => a.inserted).length, 1, 'exactly one replica filed it');
    const winner = answers.find((a) => a.inserted)?.job.id;
    for (const a of answers) assert.equal(a.job.id, winner, 'every replica was told of the one job');
  }
  assert.equal((await store.listJobs({ limit: 100 })).length, 5);
});

jobs.postgresTest('two replicas claiming one job at once: one gets it, and a finish happens once', async ({ store, replica }) => {
  const stores = [store, replica(), replica(), replica()];
  for (let round = 0; round < 5; round++) {
    const j = job();
    await store.insertJob(j);
    const claims = await Promise.all(stores.map((s, i) => s.markRunning(j.id, 1_000 + i)));
    assert.equal(claims.filter(Boolean).length, 1, 'exactly one replica claimed it');
    const finishes = await Promise.all(stores.map((s, i) => s.finishJob(j.id, { state: 'succeeded', result: null, errorCode: null, error: null, at: 2_000 + i })));
    assert.equal(finishes.filter(Boolean).length, 1, 'exactly one replica finished it');
  }
});

jobs.postgresTest('two replicas recording progress at once number the log lines without a gap or a clash', async ({ store, replica }) => {
  const stores = [store, replica(), replica()];
  const batch = (from: number) => Array.from({ length: 50 }, (_, i) => ({ at: from + i, line: `l${from + i}` }));
  for (let round = 0; round < 5; round++) {
    const j = job();
    await store.insertJob(j);
    await Promise.all(stores.map((s) => s.getJob(j.id))); // every pool connected: the reports overlap
    await Promise.all([...stores.map((s, i) => s.recordProgress(j.id, [], batch(i * 1_000))), stores[1]?.recordProgress(j.id, [], batch(0))]);
    const lines = await store.logs(j.id);
    assert.equal(lines.length, 150);
    assert.equal(new Set(lines.map((l) => l.line)).size, 150, 'each line once, the replayed batch included');
  }
});
