/** The stack store's contract, on SQLite and on PostgreSQL: node labels, revisions numbered per
 * stack, one running rollout per stack, idempotent submits, node states, rollout patches and
 * listing order; and on PostgreSQL, replicas submitting at once store one rollout. */
import assert from 'node:assert/strict';
import type { StackTarget } from '../src/protocol/stack-api.ts';
import type { StackRevision } from '../src/protocol/stacks.ts';
import { PostgresStackStore } from '../src/store/postgres/postgres-stack-store.ts';
import { SqliteStackStore } from '../src/store/sqlite/sqlite-stack-store.ts';
import type { RevisionRecord, RolloutRecord, StackStore } from '../src/store/stack-store.ts';
import { storeContract } from './support/store-contract.ts';

const stacks = storeContract<StackStore>('stacks', { sqlite: (db) => new SqliteStackStore(db), postgres: (db) => new PostgresStackStore(db) });

function revision(stack: string, n: number, at = 1_000): RevisionRecord {
  return {
    stack,
    revision: n,
    compose: `services: {web: {image: "nginx:${n}"}}`,
    env: { A: String(n) },
    secretNames: { env: ['TOKEN'], files: [] },
    sealedSecrets: `sealed-${n}`,
    fileNames: ['compose.yaml'],
    target: { project: stack, revision: n } as unknown as StackRevision,
    targetSpec: { node: 'n1' } as unknown as StackTarget,
    parallel: 2,
    createdBy: 'admin',
    createdAt: at,
  };
}

let serial = 0;
function rollout(stack: string, rev: number, over: Partial<RolloutRecord> = {}): RolloutRecord {
  serial++;
  return {
    id: `ro_${String(serial).padStart(6, '0')}`,
    stack,
    kind: 'deploy',
    revision: rev,
    nodes: ['n1', 'n2', 'n3'],
    parallel: 2,
    wave: 0,
    state: 'running',
    stoppedAtNode: null,
    error: null,
    jobIds: [],
    idempotencyKey: `key-${serial}`,
    createdBy: 'admin',
    createdAt: 10_000 + serial,
    finishedAt: null,
    ...over,
  };
}

/** Deploys the next revision of `stack` and finishes its rollout. */
async function deployed(store: StackStore, stack: string): Promise<RolloutRecord> {
  const r = rollout(stack, 0);
  const made = await store.createRevision(
    stack,
    1_000,
    (n) => revision(stack, n),
    (n) => ({ ...r, revision: n }),
    r.idempotencyKey,
  );
  await store.updateRollout(made.rollout.id, { state: 'succeeded', finishedAt: 20_000 });
  return made.rollout;
}

stacks.test('node labels: set and removed in one call, listed by node and key', async (store) => {
  assert.deepEqual(await store.listNodeLabels(), []);
  await store.setNodeLabels('n2', { zone: 'b', tier: 'web' });
  await store.setNodeLabels('n1', { zone: 'a' });
  await store.setNodeLabels('n2', { zone: 'c', tier: null, gone: null });
  assert.deepEqual(await store.listNodeLabels(), [
    { node: 'n1', key: 'zone', value: 'a' },
    { node: 'n2', key: 'zone', value: 'c' },
  ]);
});

stacks.test('createRevision: the stack appears, revisions count up per stack, each is current and readable', async (store) => {
  assert.equal(await store.getStack('web'), null);
  const r1 = rollout('web', 0);
  const first = await store.createRevision(
    'web',
    500,
    (n) => revision('web', n),
    (n) => ({ ...r1, revision: n }),
    r1.idempotencyKey,
  );
  assert.equal(first.created, true);
  assert.equal(first.rollout.revision, 1);
  assert.deepEqual(await store.getStack('web'), { name: 'web', createdAt: 500, currentRevision: 1, removedAt: null });
  assert.deepEqual(await store.getRevision('web', 1), revision('web', 1));
  assert.deepEqual(await store.getRollout(r1.id), { ...r1, revision: 1 });
  await store.updateRollout(r1.id, { state: 'succeeded' });
  await deployed(store, 'web');
  await deployed(store, 'db');
  assert.deepEqual(
    (await store.listRevisions('web')).map((r) => r.revision),
    [2, 1],
  );
  assert.equal((await store.getStack('web'))?.currentRevision, 2);
  assert.equal((await store.getStack('web'))?.createdAt, 500, 'created once');
  assert.equal((await store.getStack('db'))?.currentRevision, 1);
  assert.deepEqual(
    (await store.listStacks()).map((s) => s.name),
    ['db', 'web'],
  );
  assert.equal(await store.getRevision('web', 9), null);
  assert.deepEqual(await store.listRevisions('nothing'), []);
});

stacks.test('createRevision: a repeated key returns the first rollout and stores nothing', async (store) => {
  const r = rollout('web', 0);
  const first = await store.createRevision(
    'web',
    1,
    (n) => revision('web', n),
    (n) => ({ ...r, revision: n }),
    r.idempotencyKey,
  );
  let built = 0;
  const again = await store.createRevision(
    'web',
    2,
    (n) => {
      built++;
      return revision('web', n);
    },
    (n) => ({ ...rollout('web', n), idempotencyKey: r.idempotencyKey }),
    r.idempotencyKey,
  );
  assert.equal(again.created, false);
  assert.deepEqual(again.rollout, first.rollout);
  assert.equal(built, 0);
  assert.equal((await store.listRevisions('web')).length, 1);
});

stacks.test('one running rollout per stack: another is refused with rollout_in_progress and stores nothing', async (store) => {
  const r = rollout('web', 0);
  await store.createRevision(
    'web',
    1,
    (n) => revision('web', n),
    (n) => ({ ...r, revision: n }),
    r.idempotencyKey,
  );
  const next = rollout('web', 0);
  await assert.rejects(
    store.createRevision(
      'web',
      2,
      (n) => revision('web', n),
      (n) => ({ ...next, revision: n }),
      next.idempotencyKey,
    ),
    (err: { code?: string }) => err.code === 'rollout_in_progress',
  );
  await assert.rejects(store.startRollout(rollout('web', 1, { kind: 'remove' }), { removedAt: 5 }), (err: { code?: string }) => err.code === 'rollout_in_progress');
  assert.equal((await store.listRevisions('web')).length, 1);
  assert.equal((await store.getStack('web'))?.removedAt, null);
  assert.equal(await store.getRollout(next.id), null);
  // Another stack is not held up.
  await deployed(store, 'db');
});

stacks.test('startRollout: moves the stack (rollback, removal), a repeated key returns the first', async (store) => {
  await deployed(store, 'web');
  await deployed(store, 'web');
  const back = rollout('web', 1, { kind: 'rollback' });
  const started = await store.startRollout(back, { currentRevision: 1 });
  assert.deepEqual(started, { created: true, rollout: back });
  assert.equal((await store.getStack('web'))?.currentRevision, 1);
  const again = await store.startRollout({ ...rollout('web', 2), idempotencyKey: back.idempotencyKey }, { currentRevision: 2 });
  assert.deepEqual(again, { created: false, rollout: back });
  assert.equal((await store.getStack('web'))?.currentRevision, 1, 'the repeat changed nothing');
  await store.updateRollout(back.id, { state: 'succeeded' });

  const removal = rollout('web', 1, { kind: 'remove' });
  await store.startRollout(removal, { removedAt: 777 });
  assert.equal((await store.getStack('web'))?.removedAt, 777);
  await store.updateRollout(removal.id, { state: 'succeeded' });
  await deployed(store, 'web');
  assert.deepEqual(await store.getStack('web'), { name: 'web', createdAt: 1_000, currentRevision: 3, removedAt: null }, 'a new deploy clears the removal');
});

stacks.test('stack nodes: upserted by stack and node, listed in order, deleted', async (store) => {
  await deployed(store, 'web');
  await deployed(store, 'db');
  const drift = [{ service: 'web', kind: 'missing' }] as never;
  await store.upsertStackNode({ stack: 'web', node: 'n2', revision: 1, state: 'deploying', drift: [], updatedAt: 1 });
  await store.upsertStackNode({ stack: 'web', node: 'n1', revision: 1, state: 'healthy', drift: [], updatedAt: 2 });
  await store.upsertStackNode({ stack: 'db', node: 'n1', revision: 1, state: 'healthy', drift: [], updatedAt: 3 });
  await store.upsertStackNode({ stack: 'web', node: 'n2', revision: 1, state: 'drifted', drift, updatedAt: 4 });
  assert.deepEqual(
    (await store.listStackNodes()).map((r) => `${r.stack}/${r.node}`),
    ['db/n1', 'web/n1', 'web/n2'],
  );
  assert.deepEqual((await store.listStackNodes('web')).at(-1), { stack: 'web', node: 'n2', revision: 1, state: 'drifted', drift, updatedAt: 4 });
  await store.deleteStackNode('web', 'n1');
  await store.deleteStackNode('web', 'nobody');
  assert.deepEqual(
    (await store.listStackNodes('web')).map((r) => r.node),
    ['n2'],
  );
  assert.deepEqual(await store.listStackNodes('nothing'), []);
  await assert.rejects(store.upsertStackNode({ stack: 'ghost', node: 'n1', revision: 1, state: 'healthy', drift: [], updatedAt: 1 }), 'a node state needs its stack');
});

stacks.test("rollouts: patches touch only the fields given; running ones oldest first; a stack's newest first, limited", async (store) => {
  const a = await deployed(store, 'web');
  const r = rollout('web', 0);
  const b = (
    await store.createRevision(
      'web',
      1,
      (n) => revision('web', n),
      (n) => ({ ...r, revision: n }),
      r.idempotencyKey,
    )
  ).rollout;
  const c = await deployed(store, 'db');
  await store.updateRollout(c.id, { state: 'running' });
  await store.updateRollout(b.id, { wave: 1, jobIds: ['job_a', 'job_b'], stoppedAtNode: 'n2', error: undefined });
  await store.updateRollout(b.id, {});
  assert.deepEqual(await store.getRollout(b.id), { ...b, wave: 1, jobIds: ['job_a', 'job_b'], stoppedAtNode: 'n2' });
  await store.updateRollout(b.id, { stoppedAtNode: null, error: 'boom', state: 'failed', finishedAt: 99 });
  assert.deepEqual(await store.getRollout(b.id), { ...b, wave: 1, jobIds: ['job_a', 'job_b'], stoppedAtNode: null, error: 'boom', state: 'failed', finishedAt: 99 });
  assert.deepEqual(
    (await store.listRunningRollouts()).map((x) => x.id),
    [c.id],
  );
  assert.deepEqual(
    (await store.listRollouts('web', 10)).map((x) => x.id),
    [b.id, a.id],
  );
  assert.deepEqual(
    (await store.listRollouts('web', 1)).map((x) => x.id),
    [b.id],
  );
  assert.deepEqual(await store.listRollouts('nothing', 10), []);
  assert.equal(await store.getRollout('ro_missing'), null);
});

stacks.postgresTest('replicas submitting at once: one key stores one rollout, two keys for one stack store one and refuse the other', async ({ store, replica }) => {
  const stores = [store, replica(), replica()];
  await Promise.all(stores.map((s) => s.listStacks())); // every pool connected: the submits overlap
  for (let round = 0; round < 4; round++) {
    const stack = `same-key-${round}`;
    const r = rollout(stack, 0);
    const answers = await Promise.all(
      stores.map((s) =>
        s.createRevision(
          stack,
          1,
          (n) => revision(stack, n),
          (n) => ({ ...r, revision: n }),
          r.idempotencyKey,
        ),
      ),
    );
    assert.equal(answers.filter((a) => a.created).length, 1);
    assert.equal((await store.listRevisions(stack)).length, 1);
  }
  for (let round = 0; round < 4; round++) {
    const stack = `two-keys-${round}`;
    const outcomes = await Promise.allSettled(
      stores.map((s) => {
        const r = rollout(stack, 0);
        return s.createRevision(
          stack,
          1,
          (n) => revision(stack, n),
          (n) => ({ ...r, revision: n }),
          r.idempotencyKey,
        );
      }),
    );
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, 'one rollout runs');
    for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as { code?: string }).code, 'rollout_in_progress');
    assert.equal((await store.listRunningRollouts()).filter((x) => x.stack === stack).length, 1);
  }
});

stacks.postgresTest('names come in byte order, as from SQLite, even where the columns sort by language (an ICU collation)', async ({ store, db }) => {
  await db.query('ALTER TABLE stacks ALTER COLUMN name TYPE text COLLATE "en-US-x-icu"');
  await db.query('ALTER TABLE node_labels ALTER COLUMN node TYPE text COLLATE "en-US-x-icu"');
  for (const name of ['b', 'B', 'a', 'A']) await deployed(store, name);
  await store.setNodeLabels('b', { zone: '1' });
  await store.setNodeLabels('B', { zone: '1' });
  await store.setNodeLabels('a', { zone: '1' });
  assert.deepEqual(
    (await store.listStacks()).map((s) => s.name),
    ['A', 'B', 'a', 'b'],
  );
  assert.deepEqual(
    (await store.listNodeLabels()).map((l) => l.node),
    ['B', 'a', 'b'],
  );
});
