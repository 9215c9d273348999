/** The alert store's contract, on SQLite and on PostgreSQL: one open incident per key, its
 * deliveries filed with it (once per incident, event and receiver), receivers unique by name,
 * due deliveries in order; and on PostgreSQL, replicas opening one condition at once open it once. */
import assert from 'node:assert/strict';
import type { AlertStore, IncidentRecord, ReceiverRecord } from '../src/store/alert-store.ts';
import { PostgresAlertStore } from '../src/store/postgres/postgres-alert-store.ts';
import { SqliteAlertStore } from '../src/store/sqlite/sqlite-alert-store.ts';
import { storeContract } from './support/store-contract.ts';

const alerts = storeContract<AlertStore>('alerts', { sqlite: (db) => new SqliteAlertStore(db), postgres: (db) => new PostgresAlertStore(db) });

let serial = 0;
const next = (prefix: string): string => `${prefix}_${String(++serial).padStart(5, '0')}`;

function incident(key: string, at: number, over: Partial<IncidentRecord> = {}): IncidentRecord {
  return {
    id: next('inc'),
    key,
    kind: key.split(':')[0] ?? 'x',
    severity: 'critical',
    node: 'shop-01',
    subject: 'shop-01',
    title: 'shop-01 is offline',
    detail: 'no heartbeat',
    state: 'open',
    openedAt: at,
    updatedAt: at,
    resolvedAt: null,
    ...over,
  };
}

function receiver(name: string, over: Partial<ReceiverRecord> = {}): ReceiverRecord {
  return {
    id: next('rcv'),
    name,
    format: 'json',
    sealedTarget: 'sealed',
    targetHint: 'https://hooks.example.com',
    headerNames: ['Authorization'],
    enabled: true,
    createdAt: 1,
    lastTest: null,
    ...over,
  };
}

alerts.test('receivers: stored and read back, listed by name, names unique (conflict), updated, deleted', async (store) => {
  const b = receiver('b-team', { enabled: false, format: 'slack' });
  const a = receiver('a-team');
  await store.insertReceiver(b);
  await store.insertReceiver(a);
  assert.deepEqual(await store.listReceivers(), [a, b]);
  assert.deepEqual(await store.getReceiver(b.id), b);
  assert.equal(await store.getReceiver('rcv_missing'), null);
  await assert.rejects(store.insertReceiver(receiver('a-team')), (err: { code?: string }) => err.code === 'conflict');
  await assert.rejects(store.updateReceiver({ ...b, name: 'a-team' }), (err: { code?: string }) => err.code === 'conflict');
  const changed = { ...b, name: 'c-team', enabled: true, headerNames: [], targetHint: 'https://ntfy.example.com', format: 'ntfy' as const };
  await store.updateReceiver(changed);
  assert.deepEqual(await store.getReceiver(b.id), changed);
  assert.equal(await store.deleteReceiver(a.id), true);
  assert.equal(await store.deleteReceiver(a.id), false);
  assert.deepEqual(await store.listReceivers(), [changed]);
});

alerts.test('receiver tests: the latest is kept, and an update leaves it alone', async (store) => {
  const r = receiver('ops');
  await store.insertReceiver(r);
  await store.recordReceiverTest(r.id, { at: 5, ok: false, status: 500, error: 'server error' });
  await store.recordReceiverTest(r.id, { at: 6, ok: true, status: 204, error: null });
  assert.deepEqual((await store.getReceiver(r.id))?.lastTest, { at: 6, ok: true, status: 204, error: null });
  await store.updateReceiver({ ...r, name: 'ops-2' });
  assert.deepEqual((await store.getReceiver(r.id))?.lastTest, { at: 6, ok: true, status: 204, error: null });
  await store.recordReceiverTest(r.id, { at: 7, ok: false, status: null, error: 'timeout' });
  assert.deepEqual((await store.getReceiver(r.id))?.lastTest, { at: 7, ok: false, status: null, error: 'timeout' });
});

alerts.test('incidents: one open per key; opening files its deliveries; resolving once files the resolved ones', async (store) => {
  const r1 = receiver('one');
  const r2 = receiver('two');
  await store.insertReceiver(r1);
  await store.insertReceiver(r2);
  const first = incident('node-offline:shop-01', 100);
  assert.equal(await store.openIncident(first, [r1.id, r2.id], [next('dlv'), next('dlv')]), true);
  assert.equal(await store.openIncident(incident('node-offline:shop-01', 101), [r1.id], [next('dlv')]), false, 'the key is open already');
  assert.deepEqual(await store.getIncident(first.id), first);
  assert.deepEqual(await store.openIncidents(), [first]);
  const opened = await store.deliveriesOf([first.id]);
  assert.deepEqual(
    opened.map((d) => [d.event, d.receiverId, d.state, d.attempts, d.nextAt, d.createdAt]),
    [
      ['opened', r1.id, 'pending', 0, 100, 100],
      ['opened', r2.id, 'pending', 0, 100, 100],
    ].sort((x, y) => String(x[1]).localeCompare(String(y[1]))),
  );

  await store.updateIncident(first.id, { title: 'still offline', detail: 'for 5 minutes', severity: 'warning', updatedAt: 150 });
  assert.deepEqual(await store.getIncident(first.id), { ...first, title: 'still offline', detail: 'for 5 minutes', severity: 'warning', updatedAt: 150 });

  assert.equal(await store.resolveIncident(first.id, 200, [r1.id], [next('dlv')]), true);
  assert.equal(await store.resolveIncident(first.id, 201, [r1.id], [next('dlv')]), false, 'resolved once');
  const resolved = await store.getIncident(first.id);
  assert.equal(resolved?.state, 'resolved');
  assert.equal(resolved?.resolvedAt, 200);
  assert.equal(resolved?.updatedAt, 200);
  await store.updateIncident(first.id, { title: 'late', detail: '', severity: 'critical', updatedAt: 300 });
  assert.equal((await store.getIncident(first.id))?.title, 'still offline', 'a resolved incident is not updated');
  assert.equal((await store.deliveriesOf([first.id])).length, 3);
  assert.deepEqual(await store.openIncidents(), []);
  assert.equal(await store.resolveIncident('inc_missing', 1, [], []), false);
  assert.equal(await store.getIncident('inc_missing'), null);

  const again = incident('node-offline:shop-01', 400);
  assert.equal(await store.openIncident(again, [], []), true, 'the key may open again once resolved');
});

alerts.test('a delivery already filed for an incident, event and receiver is kept, not doubled', async (store) => {
  const r = receiver('one');
  await store.insertReceiver(r);
  const i = incident('disk:shop-01', 10);
  await store.openIncident(i, [r.id, r.id], [next('dlv'), next('dlv')]);
  assert.equal((await store.deliveriesOf([i.id])).length, 1);
});

alerts.test('recent incidents: open ones first, then newest updated; limited', async (store) => {
  const old = incident('a:1', 10);
  const resolvedLate = incident('b:1', 20);
  const openEarly = incident('c:1', 5);
  for (const x of [old, resolvedLate, openEarly]) await store.openIncident(x, [], []);
  await store.resolveIncident(old.id, 30, [], []);
  await store.resolveIncident(resolvedLate.id, 40, [], []);
  assert.deepEqual(
    (await store.recentIncidents(10)).map((x) => x.id),
    [openEarly.id, resolvedLate.id, old.id],
  );
  assert.deepEqual(
    (await store.recentIncidents(2)).map((x) => x.id),
    [openEarly.id, resolvedLate.id],
  );
  assert.deepEqual(
    (await store.openIncidents()).map((x) => x.id),
    [openEarly.id],
  );
});

alerts.test('deliveries: due ones by time, the next due time, attempts recorded, recent newest first, cascades', async (store) => {
  const r1 = receiver('one');
  const r2 = receiver('two');
  await store.insertReceiver(r1);
  await store.insertReceiver(r2);
  assert.equal(await store.nextDeliveryAt(), null);
  const early = incident('a:1', 100);
  const late = incident('b:1', 300);
  const [d1, d2, d3] = [next('dlv'), next('dlv'), next('dlv')];
  await store.openIncident(late, [r1.id], [d3]);
  await store.openIncident(early, [r1.id, r2.id], [d1, d2]);
  assert.equal(await store.nextDeliveryAt(), 100);
  assert.deepEqual(
    (await store.dueDeliveries(200, 10)).map((d) => d.id),
    [d1, d2],
  );
  assert.deepEqual(
    (await store.dueDeliveries(300, 1)).map((d) => d.id),
    [d1],
  );
  await store.recordAttempt(d1, { state: 'sent', attempts: 1, nextAt: null, lastStatus: 200, lastError: null, sentAt: 101 });
  await store.recordAttempt(d2, { state: 'pending', attempts: 1, nextAt: 250, lastStatus: 503, lastError: 'unavailable', sentAt: null });
  const [sent] = (await store.deliveriesOf([early.id])).filter((d) => d.id === d1);
  assert.deepEqual(sent, { id: d1, incidentId: early.id, event: 'opened', receiverId: r1.id, state: 'sent', attempts: 1, nextAt: null, lastStatus: 200, lastError: null, createdAt: 100, sentAt: 101 });
  assert.deepEqual(
    (await store.dueDeliveries(1_000, 10)).map((d) => d.id),
    [d2, d3],
  );
  assert.equal(await store.nextDeliveryAt(), 250);
  assert.deepEqual(
    (await store.recentDeliveries(10)).map((d) => d.id),
    [d3, d1, d2],
  );
  assert.deepEqual(
    (await store.recentDeliveries(1)).map((d) => d.id),
    [d3],
  );
  assert.deepEqual(await store.deliveriesOf([]), []);
  assert.deepEqual(
    (await store.deliveriesOf([early.id, late.id])).map((d) => d.id),
    [d1, d2, d3],
  );
  await store.deleteReceiver(r1.id);
  assert.deepEqual(
    (await store.deliveriesOf([early.id, late.id])).map((d) => d.id),
    [d2],
    "a receiver's deliveries go with it",
  );
});

alerts.postgresTest('replicas opening one condition at once open one incident with one set of deliveries', async ({ store, replica }) => {
  const stores = [store, replica(), replica()];
  const r = receiver('ops');
  await store.insertReceiver(r);
  await Promise.all(stores.map((s) => s.openIncidents())); // every pool connected: the openings overlap
  for (let round = 0; round < 5; round++) {
    const key = `node-offline:n${round}`;
    const answers = await Promise.all(stores.map((s, i) => s.openIncident(incident(key, 100 + i), [r.id], [next('dlv')])));
    assert.equal(answers.filter(Boolean).length, 1);
    const open = (await store.openIncidents()).filter((x) => x.key === key);
    assert.equal(open.length, 1);
    assert.equal((await store.deliveriesOf(open.map((x) => x.id))).length, 1);
  }
});
