/** The incident book on a real SQLite store: a source that says the same thing again and again
 * while the store is slow costs one write, not one per word; the latest word while it waits is
 * the one stored; and a clear between two raises is not lost behind the first. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { IncidentBook } from '../src/hub/alerts/incident-book.ts';
import type { Condition } from '../src/hub/alerts/alert-source.ts';
import { silentLogger } from '../src/lib/logger.ts';
import type { AlertStore } from '../src/store/alert-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';

let dir: string;
let store: SqliteStore;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-incidents-'));
  store = new SqliteStore(join(dir, 'dockfleet.db'));
  await store.migrate();
});
after(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** The alert store, counting writes and holding them all until `release` (a slow disk). */
function slowStore(inner: AlertStore): { store: AlertStore; writes: string[]; release: () => void } {
  const writes: string[] = [];
  let release = (): void => {};
  const gate = { promise: new Promise<void>((resolve) => (release = resolve)) };
  const over: Partial<AlertStore> = {};
  // The store's own methods keep their `this` (private fields); three are wrapped.
  const wrapped = new Proxy(inner, {
    get: (target, name: keyof AlertStore) => over[name] ?? (target[name] as (...a: unknown[]) => unknown).bind(target),
  });
  over.openIncident = async (incident, receivers, ids) => {
    writes.push(`open ${incident.key} ${incident.detail}`);
    await gate.promise;
    return inner.openIncident(incident, receivers, ids);
  };
  over.updateIncident = async (id, fields) => {
    writes.push(`update ${fields.detail}`);
    await gate.promise;
    return inner.updateIncident(id, fields);
  };
  over.resolveIncident = async (id, at, receivers, ids) => {
    writes.push(`resolve ${id.slice(0, 4)}`);
    await gate.promise;
    return inner.resolveIncident(id, at, receivers, ids);
  };
  return {
    store: wrapped,
    writes,
    release,
  };
}

const condition = (key: string, detail: string): Condition => ({ key, severity: 'critical', node: 'n', subject: 'n', title: `${key} holds`, detail });

test('10,000 raises of conditions not yet stored queue one open each, with the latest detail', async () => {
  const slow = slowStore(store.alerts);
  const book = new IncidentBook(slow.store, silentLogger());
  for (let look = 0; look < 100; look++) for (let i = 0; i < 100; i++) book.raise('node-offline', condition(`node-offline:a-${i}`, `look ${look}`));
  slow.release();
  await book.settled();
  assert.equal(slow.writes.length, 100, 'one write per condition');
  const open = await store.alerts.openIncidents();
  const ours = open.filter((i) => i.key.startsWith('node-offline:a-'));
  assert.equal(ours.length, 100);
  assert.ok(
    ours.every((i) => i.detail === 'look 99'),
    'each stored with the word said last',
  );
});

test('raise, clear, raise while the first waits: the clear is not swallowed, the last raise opens', async () => {
  const slow = slowStore(store.alerts);
  const book = new IncidentBook(slow.store, silentLogger());
  const key = 'node-offline:b';
  book.raise('node-offline', condition(key, 'first'));
  book.clear(key); // not open yet: the waiting raise must not run after it
  await book.settled();
  assert.deepEqual(slow.writes, [], 'a raise cleared before it ran writes nothing');
  assert.equal((await store.alerts.openIncidents()).filter((i) => i.key === key).length, 0);

  book.raise('node-offline', condition(key, 'second'));
  slow.release();
  await book.settled();
  assert.deepEqual(slow.writes, [`open ${key} second`]);
  assert.ok(book.openKeys(key).has(key));

  // Open now: a changed detail queued, then a clear, then another detail, all before any runs.
  book.raise('node-offline', condition(key, 'third'));
  book.clear(key);
  book.raise('node-offline', condition(key, 'fourth'));
  await book.settled();
  assert.deepEqual(slow.writes.slice(1), ['resolve inc_', `open ${key} fourth`], 'the clear ran, then the raise said after it');
  const stored = (await store.alerts.openIncidents()).filter((i) => i.key === key);
  assert.equal(stored.length, 1);
  assert.equal(stored[0]!.detail, 'fourth');
});

test('clearOthers and openKeys keep to their prefix, across kinds and nodes', async () => {
  const book = new IncidentBook(store.alerts, silentLogger());
  await book.load();
  const keys = ['container:n1:web', 'container:n1:db', 'container:n10:web', 'container:n2:web', 'node-offline:n1', 'node-offlinex:n1'];
  for (const key of keys) book.raise(key.split(':')[0]!, condition(key, 'holds'));
  await book.settled();
  assert.deepEqual([...book.openKeys('container:n1:').keys()].sort(), ['container:n1:db', 'container:n1:web']);
  const spanning = [...book.openKeys('node-offline').keys()].filter((k) => k.endsWith(':n1'));
  assert.deepEqual(spanning.sort(), ['node-offline:n1', 'node-offlinex:n1'], 'a prefix without a colon spans kinds');
  book.clearOthers('container:n1:', new Set(['container:n1:web']));
  await book.settled();
  const open = (await store.alerts.openIncidents()).map((i) => i.key).filter((k) => keys.includes(k));
  assert.deepEqual(open.sort(), keys.filter((k) => k !== 'container:n1:db').sort());
  assert.deepEqual([...book.openKeys('container:').keys()].sort(), ['container:n10:web', 'container:n1:web', 'container:n2:web']);
});
