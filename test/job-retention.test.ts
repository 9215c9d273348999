/** Finished jobs and their steps and log lines are kept for a bound (the newest 10,000, none
 * past 30 days, none pruned within a day of finishing) and pruned, so the hub's database does
 * not grow without end; open jobs are never pruned. Real SQLite files, the real secret box. */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_JOB_RETENTION, JobQueue, newJobId } from '../src/hub/jobs/job-queue.ts';
import { SecretBox } from '../src/hub/secret-box.ts';
import type { JobRecord } from '../src/store/job-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { startTestHub, removeHubData } from './support/hub-fixture.ts';

const DAY = 24 * 60 * 60 * 1000;

function record(i: number, finishedAt: number | null, stack = 'ret'): JobRecord {
  return {
    id: newJobId(),
    kind: 'remove',
    node: 'n1',
    stack,
    revision: null,
    idempotencyKey: `ret:${i}:${randomBytes(4).toString('hex')}`,
    state: finishedAt === null ? 'queued' : 'succeeded',
    request: JSON.stringify({ target: null }),
    secrets: 'v1.sealed',
    createdBy: 'test',
    createdAt: (finishedAt ?? Date.now()) - 1_000,
    expiresAt: Date.now() + DAY,
    startedAt: finishedAt,
    finishedAt,
    result: null,
    errorCode: null,
    error: null,
    attempts: 1,
    deliveredAt: null,
    deliveryError: null,
    logsDropped: 0,
    intent: null,
    held: false,
    signBy: null,
  };
}

async function withStore(run: (store: SqliteStore, file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-retention-'));
  const file = join(dir, 'db.sqlite');
  const store = new SqliteStore(file);
  try {
    await store.migrate();
    await run(store, file);
  } finally {
    await store.close();
    await removeHubData(dir);
  }
}

async function addFinished(store: SqliteStore, i: number, finishedAt: number, lines = 5): Promise<string> {
  const { job } = await store.jobs.insertJob(record(i, finishedAt));
  const logs = Array.from({ length: lines }, (_, n) => ({ at: finishedAt - 500 + n, line: `line ${n} ${'x'.repeat(200)}` }));
  await store.jobs.recordProgress(job.id, [{ name: 'apply', state: 'succeeded', startedAt: finishedAt - 900, finishedAt }], logs);
  return job.id;
}

test('the default bound is the newest 10,000 finished jobs and 30 days', () => {
  assert.deepEqual(DEFAULT_JOB_RETENTION, { keepFinished: 10_000, maxAgeMs: 30 * DAY, minAgeMs: DAY });
});

test('prune drops finished jobs past the count or the age, with their steps and logs; open and recent jobs stay', async () => {
  await withStore(async (store) => {
    const queue = new JobQueue(store.jobs, new SecretBox(randomBytes(32)));
    const now = Date.now();
    const old: string[] = [];
    for (let i = 0; i < 8; i++) old.push(await addFinished(store, i, now - 2 * DAY - (8 - i) * 60_000)); // 2 days old, oldest first
    const ancient = await addFinished(store, 100, now - 40 * DAY);
    const fresh = await addFinished(store, 200, now - 60_000); // finished a minute ago: kept whatever the count
    const { job: open } = await store.jobs.insertJob(record(300, null));
    const pruned = await queue.prune(now, { keepFinished: 3, maxAgeMs: 30 * DAY, minAgeMs: DAY });
    assert.equal(pruned, 7, 'the 40-day-old job and the 6 oldest beyond the newest 3 finished');
    const left = (await queue.list({ stack: 'ret', limit: 100 })).map((j) => j.id).sort();
    assert.deepEqual(left, [fresh, open.id, old[6]!, old[7]!].sort());
    assert.equal(await store.jobs.getJob(ancient), null);
    assert.deepEqual(await store.jobs.logs(old[0]!), [], 'its log lines went with it');
    assert.deepEqual(await store.jobs.steps(old[0]!), []);
    assert.equal((await store.jobs.logs(old[7]!)).length, 5, 'kept jobs keep their logs');
  });
});

test('with a bound, the database file stops growing however many jobs pass through it', async () => {
  await withStore(async (store, file) => {
    const queue = new JobQueue(store.jobs, new SecretBox(randomBytes(32)));
    const sizes: number[] = [];
    let i = 0;
    for (let round = 0; round < 6; round++) {
      const at = Date.now() - 3 * DAY + round * 60_000;
      for (let n = 0; n < 150; n++) await addFinished(store, i++, at + n, 20);
      await queue.prune(Date.now(), { keepFinished: 150, maxAgeMs: 30 * DAY, minAgeMs: DAY });
      // The database file itself, with the write-ahead log folded in: the log's own size says when
      // SQLite last checkpointed, not how much the database holds.
      const checkpoint = new Database(file);
      checkpoint.pragma('wal_checkpoint(TRUNCATE)');
      checkpoint.close();
      sizes.push((await stat(file)).size + (await stat(`${file}-wal`).catch(() => ({ size: 0 }))).size);
    }
    assert.equal((await queue.list({ stack: 'ret', limit: 1_000 })).length, 150);
    assert.ok(sizes[5]! <= sizes[2]! * 1.1, `the file keeps growing: ${sizes.join(', ')} bytes`);
  });
});

test('a hub prunes at start: a job finished 40 days ago is gone, one from yesterday stays', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-retention-hub-'));
  try {
    const store = new SqliteStore(join(dir, 'dockfleet.db'));
    await store.migrate();
    const ancient = await addFinished(store, 1, Date.now() - 40 * DAY);
    const recent = await addFinished(store, 2, Date.now() - 2 * DAY);
    await store.close();
    const hub = await startTestHub({ dataDir: dir });
    try {
      assert.equal((await hub.api('GET', `/api/v1/jobs/${ancient}`)).status, 404);
      assert.equal((await hub.api('GET', `/api/v1/jobs/${recent}`)).status, 200);
    } finally {
      await hub.stop();
    }
  } finally {
    await removeHubData(dir);
  }
});
