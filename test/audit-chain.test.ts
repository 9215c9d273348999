/** The hub's audit log as a hash chain and its agreement with each host's own log (issue 13, item
 * 5), against a real hub, a real agent process and a private engine: `dockfleet audit verify` (and
 * its REST twin) holds, then names a row edited or deleted straight in the sqlite file; the host's
 * log agrees after stops through the hub, differs when an entry is cut from the host's file (the
 * hub row in hubOnly) or when a hub row is deleted (the host entry in hostOnly); a non-admin with a
 * grant sees only its node's rows; the node card says whether the logs agree. */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { DATABASE_FILE } from '../src/hub/run-hub.ts';
import { runContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { spawnDockfleet } from './support/processes.ts';
import { gotoSteadily, launchBrowser, openAsFirstAdmin } from './support/browser.ts';
import { assertAccessible } from './support/axe.ts';

const NODE = 'chained';
let rig: NodeRig | undefined;
/** The hub's row ids of the stops, in order. */
const stops: number[] = [];
/** The audit row the deletion test removed, to put back. */
let deleted: Record<string, unknown> | undefined;

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args);
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

const verify = (...extra: string[]) => cli(['audit', 'verify', '--data', rig!.hubDir, ...extra]);

function withDb<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(join(rig!.hubDir, DATABASE_FILE));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

async function agreement(query = ''): Promise<Record<string, any>> {
  const res = await rig!.hub.api('GET', `/api/v1/nodes/${NODE}/audit-agreement${query}`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

before(async () => {
  rig = await startNodeRig('audit-chain', NODE);
  for (const name of ['one', 'two', 'three']) {
    const id = await runContainer(rig.engine, { name: `chained-${name}` });
    const stop = await rig.hub.api('POST', `/docker/nodes/${NODE}/v1.41/containers/${id}/stop?t=0`);
    assert.equal(stop.status, 204, JSON.stringify(stop.json));
  }
  const rows = await waitFor(
    async () => {
      const r = (await rig!.hub.api('GET', `/api/v1/audit?node=${NODE}`)).json as Array<{ id: number; path: string; status: number | null }>;
      const done = r.filter((row) => /\/stop/.test(row.path) && row.status === 204);
      return done.length === 3 ? done : null;
    },
    10_000,
    'three finished stops in the hub audit log',
  );
  stops.push(...rows.map((r) => r.id).sort((a, b) => a - b));
});
after(async () => {
  if (rig) await stopNodeRig(rig);
});

describe('the hub chain', () => {
  test('holds: audit verify exits 0 (text and --json) and the REST verdict agrees', async () => {
    const ok = await verify();
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: \d+ audit rows match \d+ chain entries/);
    const json = await verify('--json');
    assert.equal(json.code, 0, json.stderr);
    const verdict = JSON.parse(json.stdout);
    assert.equal(verdict.ok, true);
    assert.ok(verdict.rows >= 3 && verdict.entries >= 6, JSON.stringify(verdict));
    const rest = await rig!.hub.api('GET', '/api/v1/audit/verify');
    assert.equal(rest.status, 200);
    assert.equal(rest.json.ok, true);
  });

  test('an UPDATE of one row in the sqlite file: exit 1 naming that row; put back, it holds again', async () => {
    const id = stops[1]!;
    const path = withDb((db) => (db.prepare('SELECT path FROM audit_log WHERE id = ?').get(id) as { path: string }).path);
    withDb((db) => db.prepare('UPDATE audit_log SET path = ? WHERE id = ?').run('/v1.41/containers/innocent/start', id));
    const bad = await verify();
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`audit row ${id} was edited: path is "/v1.41/containers/innocent/start"`));
    const json = await verify('--json');
    assert.equal(json.code, 1);
    assert.deepEqual({ kind: JSON.parse(json.stdout).problem.kind, auditId: JSON.parse(json.stdout).problem.auditId }, { kind: 'row-edited', auditId: id });
    withDb((db) => db.prepare('UPDATE audit_log SET path = ? WHERE id = ?').run(path, id));
    assert.equal((await verify()).code, 0);
  });

  test('an edited chain entry (its record rewritten) is named by its seq', async () => {
    const entry = withDb((db) => db.prepare("SELECT seq, record FROM audit_chain WHERE audit_id = ? AND kind = 'intent'").get(stops[0]!) as { seq: number; record: string });
    withDb((db) => db.prepare('UPDATE audit_chain SET record = ? WHERE seq = ?').run(entry.record.replace('/stop', '/kill'), entry.seq));
    const bad = await verify();
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`chain entry seq ${entry.seq} .*hash mismatch`));
    withDb((db) => db.prepare('UPDATE audit_chain SET record = ? WHERE seq = ?').run(entry.record, entry.seq));
    assert.equal((await verify()).code, 0);
  });
});

describe('agreement with the host', () => {
  test('agree after stops through the hub', async () => {
    const agreed = await waitFor(
      async () => {
        const a = await agreement();
        return a.state === 'agree' && a.checkedThrough >= 3 ? a : null;
      },
      15_000,
      'the host log and the hub agree',
    );
    assert.deepEqual(agreed.hubOnly, []);
    assert.deepEqual(agreed.hostOnly, []);
    assert.equal(agreed.hostChainProblem, null);
    assert.equal(agreed.checkedThrough, agreed.hostHead.seq);
  });

  test("an entry removed from the host's file: differ, its hub row in hubOnly; put back, agree", async () => {
    const file = join(rig!.dir, 'agent', 'audit.log');
    const original = readFileSync(file, 'utf8');
    const lines = original.split('\n');
    const victim = lines.findIndex((l) => l.includes(`"ref":"${stops[1]}"`));
    assert.ok(victim >= 0, `the host log names hub row ${stops[1]}`);
    writeFileSync(file, lines.filter((_, i) => i !== victim).join('\n'));
    try {
      const differs = await agreement('?full=1');
      assert.equal(differs.state, 'differ');
      assert.deepEqual(
        differs.hubOnly.map((r: { id: number }) => r.id),
        [stops[1]],
      );
      assert.match(differs.hostChainProblem, /an entry was removed or the entries reordered/);
    } finally {
      writeFileSync(file, original);
    }
    assert.equal((await agreement('?full=1')).state, 'agree');
  });

  test('a hub row deleted in the sqlite file: audit verify names it; the host entry is in hostOnly', async () => {
    const id = stops[2]!;
    deleted = withDb((db) => db.prepare('SELECT * FROM audit_log WHERE id = ?').get(id) as Record<string, unknown>);
    withDb((db) => db.prepare('DELETE FROM audit_log WHERE id = ?').run(id));
    const bad = await verify();
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, new RegExp(`audit row ${id} is in the chain but not in the audit log: it was deleted`));
    const differs = await agreement();
    assert.equal(differs.state, 'differ');
    assert.deepEqual(
      differs.hostOnly.map((e: { ref: string }) => e.ref),
      [String(id)],
    );
    assert.match(differs.hostOnly[0].op, /^POST \/containers\/.*\/stop$/);
    assert.deepEqual(differs.hubOnly, []);
  });
});

describe('who sees which rows', () => {
  test("a non-admin with an operator grant sees only its node's rows; a viewer grant sees none; verify is for admins", async () => {
    const { hub } = rig!;
    // A row on another node (refused there) and hub-wide rows (the users made here).
    assert.equal((await hub.api('POST', '/api/v1/nodes/elsewhere/approve')).status, 404);
    const op = await hub.api('POST', '/api/v1/users', { name: 'opal', role: 'viewer' });
    assert.equal(op.status, 201, JSON.stringify(op.json));
    assert.equal((await hub.api('POST', '/api/v1/users/opal/grants', { node: NODE, role: 'operator' })).status, 201);
    const viewer = await hub.api('POST', '/api/v1/users', { name: 'vera', role: 'viewer' });
    assert.equal(viewer.status, 201);
    const all = (await hub.api('GET', '/api/v1/audit?limit=1000')).json as Array<{ node: string | null }>;
    assert.ok(all.some((r) => r.node === 'elsewhere') && all.some((r) => r.node === null), 'the admin sees every row');

    const seen = await hub.api('GET', '/api/v1/audit?limit=1000', undefined, op.json.token);
    assert.equal(seen.status, 200, JSON.stringify(seen.json));
    assert.ok(seen.json.length >= 2, JSON.stringify(seen.json));
    assert.deepEqual([...new Set(seen.json.map((r: { node: string }) => r.node))], [NODE]);
    assert.equal((await hub.api('GET', `/api/v1/nodes/${NODE}/audit-agreement`, undefined, op.json.token)).status, 200);

    const none = await hub.api('GET', '/api/v1/audit', undefined, viewer.json.token);
    assert.equal(none.status, 200);
    assert.deepEqual(none.json, []);
    assert.equal((await hub.api('GET', '/api/v1/audit/verify', undefined, op.json.token)).status, 403);
    assert.equal((await hub.api('GET', `/api/v1/nodes/${NODE}/audit-agreement`, undefined, viewer.json.token)).status, 403);

    // A scoped user with the same grant reaches the route too, with the same filter.
    assert.equal((await hub.api('PATCH', '/api/v1/users/opal', { scoped: true })).status, 200);
    const scoped = await hub.api('GET', '/api/v1/audit?limit=1000', undefined, op.json.token);
    assert.equal(scoped.status, 200, JSON.stringify(scoped.json));
    assert.deepEqual([...new Set(scoped.json.map((r: { node: string }) => r.node))], [NODE]);
  });
});

describe('the UI', () => {
  test('the node card says whether the host log agrees, links the audit page, which lists the one-sided entries; axe clean at 1280 and 390', async () => {
    const browser = await launchBrowser();
    try {
      const { context, page } = await openAsFirstAdmin(browser, { url: rig!.hub.url, dataDir: rig!.hubDir }, 'Nodes');
      await gotoSteadily(page, `${rig!.hub.url}/nodes`);
      const card = page.getByRole('article', { name: NODE });
      // The row deleted at the hub above: the host has an entry the hub lacks.
      await card.getByText('Host log differs: 1 entry on one side only').waitFor();
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 900 });
        await assertAccessible(page, `nodes at ${width}`);
      }
      await page.setViewportSize({ width: 1280, height: 900 });
      await card.getByRole('link', { name: `Audit log of ${NODE}` }).click();
      await page.waitForURL(/\/audit\?node=chained/);
      const hostOnly = page.getByRole('region', { name: `In ${NODE}'s own log only` });
      await hostOnly.getByText(`hub row ${stops[2]}`).waitFor();
      await page
        .getByRole('status')
        .filter({ hasText: `Compared with ${NODE}'s own log: Host log differs` })
        .waitFor();
      for (const width of [1280, 390]) {
        await page.setViewportSize({ width, height: 900 });
        await assertAccessible(page, `audit at ${width}`);
      }

      // Put the row back as it was: the hub's chain holds again and the logs agree.
      withDb((db) => {
        const cols = Object.keys(deleted!);
        db.prepare(`INSERT INTO audit_log (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...cols.map((c) => deleted![c]));
      });
      assert.equal((await verify()).code, 0);
      await page.setViewportSize({ width: 1280, height: 900 });
      await gotoSteadily(page, `${rig!.hub.url}/nodes`);
      await page.getByRole('article', { name: NODE }).getByText('Host log agrees').waitFor();
      await context.close();
    } finally {
      await browser.close();
    }
  });
});
