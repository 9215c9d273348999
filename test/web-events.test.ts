/**
 * Events: the hub follows a real node's Docker engine events through its agent into a bounded
 * ring; GET /api/v1/events filters them by node, type, action and name, and the SSE stream
 * at /api/v1/events/stream delivers new ones live. The ring is bounded and newest-first.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, reportTrouble } from './support/browser.ts';
import { after, before, describe, test } from 'node:test';
import { EventRing } from '../src/hub/events/event-ring.ts';
import { fromDockerEvent } from '../src/hub/events/docker-event.ts';
import { runContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

test('the ring keeps only the newest events and filters them newest first', () => {
  const ring = new EventRing(3);
  for (const [i, name] of ['a', 'b', 'c', 'd'].entries()) {
    ring.push({ node: i % 2 ? 'n2' : 'n1', time: i, type: 'container', action: i === 3 ? 'health_status: healthy' : 'start', id: `id${name}`, name, detail: {} });
  }
  assert.equal(ring.size, 3);
  assert.deepEqual(
    ring.query().map((e) => e.name),
    ['d', 'c', 'b'],
  );
  assert.deepEqual(
    ring.query({ node: 'n2' }).map((e) => e.name),
    ['d', 'b'],
  );
  assert.deepEqual(
    ring.query({ action: 'health_status' }).map((e) => e.name),
    ['d'],
  );
  assert.deepEqual(
    ring.query({ after: 3 }).map((e) => e.seq),
    [4],
  );
  assert.deepEqual(
    ring.query({ limit: 1 }).map((e) => e.name),
    ['d'],
  );
});

test('a Docker event line becomes a fleet event; anything else is refused', () => {
  const e = fromDockerEvent('n1', { Type: 'container', Action: 'die', Actor: { ID: 'abc', Attributes: { name: 'web', exitCode: '137', secret: 'x' } }, timeNano: 1_700_000_000_123_000_000 });
  assert.deepEqual(e, { node: 'n1', time: 1_700_000_000_123, type: 'container', action: 'die', id: 'abc', name: 'web', detail: { exitCode: '137' } });
  assert.equal(fromDockerEvent('n1', 'nope'), null);
  assert.equal(fromDockerEvent('n1', { Type: 'container' }), null);
});

describe('fleet events from a real engine', () => {
  let rig: NodeRig;
  before(async () => {
    rig = await startNodeRig('evt', 'evt-01');
  });
  after(async () => {
    await stopNodeRig(rig ?? {});
  });

  test('a container started on the node shows up in the history and on the live stream, filtered', async () => {
    const seen: Array<{ name: string; action: string; node: string }> = [];
    const req = https.request(new URL('/api/v1/events/stream?type=container&name=evt-web', rig.hub.url), {
      ca: rig.hub.caPem,
      headers: { authorization: `Bearer ${rig.hub.token}` },
    });
    const ready = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        assert.equal(res.statusCode, 200);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          if (buf.includes('event: ready')) resolve();
          for (const m of buf.matchAll(/event: docker\ndata: (.*)\nid: \d+|event: docker\nid: \d+\ndata: (.*)/g)) {
            const e = JSON.parse(m[1] ?? m[2]!);
            if (!seen.some((s) => s.action === e.action && s.name === e.name)) seen.push(e);
          }
        });
      });
      req.on('error', reject);
    });
    req.end();
    await ready;
    try {
      await runContainer(rig.engine, { name: 'evt-web' });
      await runContainer(rig.engine, { name: 'other' });
      const history = await waitFor(
        async () => {
          const r = await rig.hub.api('GET', '/api/v1/events?node=evt-01&type=container&action=start');
          return r.json.some((e: { name: string }) => e.name === 'evt-web') && r.json.some((e: { name: string }) => e.name === 'other') ? r.json : null;
        },
        20_000,
        'start events in the history',
      );
      assert.ok(history.every((e: { type: string; action: string; node: string }) => e.type === 'container' && e.action === 'start' && e.node === 'evt-01'));
      const byName = await rig.hub.api('GET', '/api/v1/events?name=evt-web');
      assert.ok(byName.json.length >= 2, 'create and start of evt-web');
      assert.ok(byName.json.every((e: { name: string }) => e.name === 'evt-web'));
      await waitFor(() => seen.some((e) => e.action === 'start' && e.name === 'evt-web'), 10_000, 'the start on the live stream');
      assert.ok(
        seen.every((e) => e.name === 'evt-web' && e.node === 'evt-01'),
        'the stream applies its filter',
      );
      const bad = await rig.hub.api('GET', '/api/v1/events?limit=0');
      assert.equal(bad.status, 400);
      const anon = await rig.hub.api('GET', '/api/v1/events', undefined, '');
      assert.equal(anon.status, 401);
    } finally {
      req.destroy();
    }
  });

  describe('in the browser', () => {
    let browser: Browser;
    let page: Page;
    before(async () => {
      browser = await launchBrowser();
      const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
      reportTrouble(context);
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(rig.hub.url);
      await page.getByRole('heading', { name: /first account/ }).waitFor({ timeout: 30_000 });
      await page.getByLabel('Setup code').fill((await readFile(join(rig.hub.dataDir, 'setup.code'), 'utf8')).trim());
      await page.getByLabel('Username').fill('mara');
      await page.getByLabel('Password').fill('a long enough passphrase');
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.getByRole('link', { name: 'Events', exact: true }).waitFor();
    });
    after(async () => {
      await browser?.close();
    });

    async function assertAccessible(where: string): Promise<void> {
      const result = await new AxeBuilder({ page }).analyze();
      const bad = result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map(
          (v) =>
            `${v.id} (${v.impact}): ${v.help} — ${v.nodes
              .slice(0, 3)
              .map((n) => n.target.join(' '))
              .join('; ')}`,
        );
      assert.deepEqual(bad, [], `axe at ${where}`);
    }

    test('the events page shows a new event live, filters by name, and passes axe at 1280 and 390 px', { timeout: 60_000 }, async () => {
      await page.getByRole('link', { name: 'Events', exact: true }).click();
      await page.getByRole('heading', { name: 'Events', level: 1 }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
      await runContainer(rig.engine, { name: 'evt-live' });
      const item = page
        .locator('li.timeline-item')
        .filter({ hasText: 'evt-live' })
        .filter({ hasText: /\bstart\b/ });
      await item.first().waitFor();
      assert.match(await item.first().innerText(), /evt-01: container evt-live start/);
      await assertAccessible('events, 1280 px');
      await page.getByLabel('Name').fill('evt-live');
      await page.getByLabel('Name').press('Enter');
      await page.waitForURL(/name=evt-live/);
      await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
      const names = await page.locator('li.timeline-item').allInnerTexts();
      assert.ok(names.length > 0 && names.every((t) => t.includes('evt-live')), names.join(' | '));
      await page.setViewportSize({ width: 390, height: 844 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow} px at 390`);
      await assertAccessible('events, 390 px');
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    test('the audit log reads in words, links the node, and keeps the raw call one click away', { timeout: 60_000 }, async () => {
      const created = await rig.hub.api('POST', '/docker/nodes/evt-01/containers/create?name=audit-web', { Image: 'dockfleet-test/busybox:latest', Cmd: ['true'] });
      assert.equal(created.status, 201);
      await page.goto(`${rig.hub.url}/audit`);
      const sentence = page.locator('td[data-label="What happened"]').filter({ hasText: 'created container audit-web on evt-01' });
      await sentence.first().waitFor();
      assert.equal(await sentence.first().getByRole('link', { name: 'evt-01' }).getAttribute('href'), '/containers?node=evt-01');
      const raw = sentence.first().locator('details');
      assert.equal(await raw.locator('code').isVisible(), false);
      await raw.locator('summary').click();
      assert.match(await raw.locator('code').innerText(), /POST \/containers\/create\?name=audit-web → 201/);
      await assertAccessible('audit, 1280 px');
      await page.setViewportSize({ width: 390, height: 844 });
      await assertAccessible('audit, 390 px');
    });
  });
});
