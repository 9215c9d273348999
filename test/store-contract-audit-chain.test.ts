/** The hub's audit chain on both engines (issue 17, item 1): the same writes (intent, outcome, one-step
 * record, and rows chained at migration) verify on SQLite and PostgreSQL, the same tampering is named
 * the same way, verification pages through more rows than one page holds; and on PostgreSQL two hub
 * replicas appending at once never fork the chain. */
import assert from 'node:assert/strict';
import { SqliteAuditChain } from '../src/hub/audit-chain/sqlite-audit-chain.ts';
import { PostgresAuditChain } from '../src/hub/audit-chain/postgres-audit-chain.ts';
import type { HubAuditReport } from '../src/hub/audit-chain/verify-hub-audit.ts';
import type { Queryable } from '../src/store/postgres/db.ts';
import { type StoreMakers, storeContract } from './support/store-contract.ts';
import { pgRaw, sqliteRaw, type Raw } from './support/raw-sql.ts';

interface Intent {
  at: number;
  user: string;
  node: string | null;
  method: string;
  path: string;
}
interface Outcome {
  status: number;
  finishedAt: number;
  bytes: number | null;
}

/** What the stores do around the chain (sqlite-store.ts's begin/finish/appendAudit), on either engine. */
interface AuditHarness {
  begin(i: Intent): Promise<number>;
  finish(id: number, o: Outcome): Promise<void>;
  record(i: Intent & { status: number }): Promise<number>;
  seedExisting(): Promise<number>;
  verify(): Promise<HubAuditReport>;
  raw: Raw;
}

const harnesses: StoreMakers<AuditHarness> = {
  sqlite(db) {
    const c = new SqliteAuditChain(db);
    const insert = (i: Intent, status: number | null, finishedAt: number | null): number =>
      Number(
        db.prepare('INSERT INTO audit_log (at, user, node, method, path, status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(i.at, i.user, i.node, i.method, i.path, status, finishedAt)
          .lastInsertRowid,
      );
    return {
      begin: async (i) =>
        db.transaction(() => {
          const id = insert(i, null, null);
          c.append('intent', id, i);
          return id;
        })(),
      finish: async (id, o) =>
        db.transaction(() => {
          if (db.prepare('UPDATE audit_log SET status = ?, finished_at = ?, bytes = ? WHERE id = ?').run(o.status, o.finishedAt, o.bytes, id).changes === 1) c.append('outcome', id, o);
        })(),
      record: async (i) =>
        db.transaction(() => {
          const id = insert(i, i.status, i.at);
          c.append('record', id, { ...i, finishedAt: i.at, bytes: null });
          return id;
        })(),
      seedExisting: async () => c.seedExisting(),
      verify: () => c.verify(),
      raw: sqliteRaw(db),
    };
  },
  postgres(db) {
    const c = new PostgresAuditChain(db);
    const insert = async (q: Queryable, i: Intent, status: number | null, finishedAt: number | null): Promise<number> =>
      (
        await q.query<{ id: number }>('INSERT INTO audit_log (at, "user", node, method, path, status, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id', [
          i.at,
          i.user,
          i.node,
          i.method,
          i.path,
          status,
          finishedAt,
        ])
      ).rows[0]!.id;
    return {
      begin: (i) =>
        db.tx(async (q) => {
          const id = await insert(q, i, null, null);
          await c.append(q, 'intent', id, i);
          return id;
        }),
      finish: (id, o) =>
        db.tx(async (q) => {
          if ((await q.query('UPDATE audit_log SET status = $1, finished_at = $2, bytes = $3 WHERE id = $4', [o.status, o.finishedAt, o.bytes, id])).rowCount === 1)
            await c.append(q, 'outcome', id, o);
        }),
      record: (i) =>
        db.tx(async (q) => {
          const id = await insert(q, i, i.status, i.at);
          await c.append(q, 'record', id, { ...i, finishedAt: i.at, bytes: null });
          return id;
        }),
      seedExisting: () => c.seedExisting(),
      verify: () => c.verify(),
      raw: pgRaw(db),
    };
  },
};
const chain = storeContract('audit chain', harnesses);

const T0 = Date.UTC(2026, 11, 1);
const call = (n: number, node: string | null = 'web-1'): Intent => ({ at: T0 + n, user: `alice-${n % 3}`, node, method: 'POST', path: `/containers/c${n}/stop` });

async function writeSome(h: AuditHarness): Promise<number[]> {
  const a = await h.begin(call(1));
  await h.finish(a, { status: 204, finishedAt: T0 + 10, bytes: 0 });
  const b = await h.record({ ...call(2, null), status: 200 });
  const c = await h.begin(call(3));
  await h.finish(c, { status: 500, finishedAt: T0 + 30, bytes: 123_456_789_012 });
  return [a, b, c];
}

chain.test('an empty chain verifies, its head the genesis', async (h) => {
  const report = await h.verify();
  assert.deepEqual(report, { ok: true, entries: 0, rows: 0, head: { seq: 0, hash: '0'.repeat(64) }, problem: null });
});

chain.test('intents, outcomes and one-step records chain and verify; each prev is the hash before it', async (h) => {
  const ids = await writeSome(h);
  const report = await h.verify();
  assert.equal(report.problem, null);
  assert.equal(report.ok, true);
  assert.equal(report.entries, 5);
  assert.equal(report.rows, 3);
  assert.equal(report.head.seq, 5);
  const entries = await h.raw.rows<{ seq: number; kind: string; audit_id: number; prev: string; hash: string }>('SELECT seq, kind, audit_id, prev, hash FROM audit_chain ORDER BY seq');
  assert.deepEqual(
    entries.map((e) => [e.seq, e.kind, e.audit_id]),
    [
      [1, 'intent', ids[0]],
      [2, 'outcome', ids[0]],
      [3, 'record', ids[1]],
      [4, 'intent', ids[2]],
      [5, 'outcome', ids[2]],
    ],
  );
  for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prev, entries[i - 1]!.hash);
  assert.equal(report.head.hash, entries[4]!.hash);
});

chain.test('the same writes make the same hashes on both engines (an engine-neutral chain)', async (h) => {
  await writeSome(h);
  const { head } = await h.verify();
  // Fixed inputs → a fixed head: SQLite's and PostgreSQL's chains of the same history are byte-equal.
  assert.equal(head.hash, await expectedHead());
});

let sqliteHead: Promise<string> | undefined;
/** The head hash of writeSome on SQLite (the reference), computed once. */
async function expectedHead(): Promise<string> {
  sqliteHead ??= (async () => {
    const Database = (await import('better-sqlite3')).default;
    const { applyMigrations } = await import('../src/store/sqlite/migrate.ts');
    const db = new Database(':memory:');
    applyMigrations(db);
    const h = harnesses.sqlite(db);
    await writeSome(h);
    const { head } = await h.verify();
    db.close();
    return head.hash;
  })();
  return sqliteHead;
}

chain.test('rows written before the chain are chained once by seedExisting, marked migrated', async (h) => {
  for (let n = 1; n <= 3; n++) {
    await h.raw.run('INSERT INTO audit_log (at, "user", node, method, path, status, finished_at, bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [T0 + n, 'bob', null, 'GET', `/p${n}`, 200, T0 + n, n]);
  }
  assert.equal((await h.verify()).problem?.kind, 'row-inserted');
  assert.equal(await h.seedExisting(), 3);
  const report = await h.verify();
  assert.equal(report.problem, null);
  assert.equal(report.entries, 3);
  const records = await h.raw.rows<{ record: string }>('SELECT record FROM audit_chain ORDER BY seq');
  assert.ok(records.every((r) => (JSON.parse(r.record) as { migrated?: boolean }).migrated === true));
  // New writes continue the same chain.
  await h.record({ ...call(9), status: 201 });
  assert.equal((await h.verify()).entries, 4);
});

chain.test('an edited audit row is named, with the field that changed', async (h) => {
  const [, b] = await writeSome(h);
  await h.raw.run('UPDATE audit_log SET status = 403 WHERE id = ?', [b]);
  const { ok, problem } = await h.verify();
  assert.equal(ok, false);
  assert.equal(problem?.kind, 'row-edited');
  assert.equal(problem?.auditId, b);
  assert.match(problem!.message, /status is 403, the chain recorded 200/);
});

chain.test('a deleted audit row and one inserted behind the hub are named', async (h) => {
  const [a] = await writeSome(h);
  await h.raw.run('DELETE FROM audit_log WHERE id = ?', [a]);
  assert.deepEqual(pick(await h.verify()), ['row-deleted', null, a]);
  await h.raw.run('INSERT INTO audit_log (id, at, "user", node, method, path) VALUES (?, ?, ?, ?, ?, ?)', [a, T0 + 1, 'mallory', null, 'GET', '/x']);
  assert.deepEqual(pick(await h.verify()), ['row-edited', null, a]);
  await h.raw.run('INSERT INTO audit_log (id, at, "user", node, method, path) VALUES (?, ?, ?, ?, ?, ?)', [1000, T0 + 1, 'mallory', null, 'GET', '/y']);
  await h.raw.run('DELETE FROM audit_log WHERE id = ?', [a]);
  await h.raw.run('INSERT INTO audit_log (id, at, "user", node, method, path) VALUES (?, ?, ?, ?, ?, ?)', [a, T0 + 1, 'alice-1', 'web-1', 'POST', '/containers/c1/stop']);
  await h.raw.run('UPDATE audit_log SET status = 204, finished_at = ?, bytes = 0 WHERE id = ?', [T0 + 10, a]);
  assert.deepEqual(pick(await h.verify()), ['row-inserted', null, 1000]);
});

chain.test('an edited, removed or reordered chain entry is named by its seq', async (h) => {
  await writeSome(h);
  await h.raw.run('UPDATE audit_chain SET record = ? WHERE seq = 3', ['{"forged":true}']);
  assert.deepEqual(pick(await h.verify()), ['chain-edited', 3, 2]);
  await h.raw.run('DELETE FROM audit_chain WHERE seq = 3');
  assert.deepEqual(pick(await h.verify()), ['chain-gap', 4, 3]);
  await h.raw.run('UPDATE audit_chain SET seq = 3 WHERE seq = 4');
  assert.deepEqual(pick(await h.verify()), ['chain-prev', 3, 3]);
});

chain.test('more rows than one page verify, and a row past the first page is found edited', async (h) => {
  const rows = 2_345;
  const values: unknown[] = [];
  for (let n = 1; n <= rows; n++) values.push(T0 + n, `u${n % 7}`, n % 2 ? `node-${n % 5}` : null, 'GET', `/v${n}`, 200, T0 + n + 1, n);
  for (let start = 0; start < rows; start += 500) {
    const count = Math.min(500, rows - start);
    const slots = Array.from({ length: count }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ');
    await h.raw.run(`INSERT INTO audit_log (at, "user", node, method, path, status, finished_at, bytes) VALUES ${slots}`, values.slice(start * 8, (start + count) * 8));
  }
  assert.equal(await h.seedExisting(), rows);
  const report = await h.verify();
  assert.equal(report.problem, null);
  assert.deepEqual([report.entries, report.rows, report.head.seq], [rows, rows, rows]);
  await h.raw.run('UPDATE audit_log SET path = ? WHERE id = ?', ['/edited', 2_222]);
  const edited = await h.verify();
  assert.deepEqual(pick(edited), ['row-edited', null, 2_222]);
  assert.equal(edited.rows, 2_221);
});

chain.postgresTest('two replicas appending at once never fork the chain', async ({ store, replica }) => {
  const other = replica();
  const perReplica = 60;
  const writes: Array<Promise<unknown>> = [];
  for (let n = 0; n < perReplica; n++) {
    for (const [r, h] of [store, other].entries()) {
      writes.push(
        (async () => {
          const id = await h.begin(call(n * 2 + r, `node-${r}`));
          await h.finish(id, { status: 200, finishedAt: T0 + 1000 + n, bytes: n });
          if (n % 4 === 0) await h.record({ ...call(n, `node-${r}`), status: 202 });
        })(),
      );
    }
  }
  const settled = await Promise.allSettled(writes);
  const failed = settled.filter((s) => s.status === 'rejected');
  assert.deepEqual(failed, [], 'every concurrent audit write commits');
  const expected = 2 * perReplica * 2 + 2 * Math.ceil(perReplica / 4);
  for (const h of [store, other]) {
    const report = await h.verify();
    assert.equal(report.problem, null);
    assert.equal(report.entries, expected);
    assert.equal(report.head.seq, expected);
  }
  const prevs = await store.raw.rows<{ n: number }>('SELECT count(DISTINCT prev)::int AS n FROM audit_chain');
  assert.equal(prevs[0]!.n, expected, 'no two entries extend the same predecessor');
});

function pick(r: HubAuditReport): [string | undefined, number | null | undefined, number | null | undefined] {
  return [r.problem?.kind, r.problem?.seq, r.problem?.auditId];
}
