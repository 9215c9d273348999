/**
 * Lazy pages in chromium against a real hub: the first load fetches no page but the landing ones;
 * visiting Alerts fetches its chunk then and shows the page; a chunk that cannot be fetched shows
 * the app's error state with a Retry that, once the network is back, brings the page (axe-core
 * finds no serious or critical violation in that error state at 1280 and 390 px).
 * A read that never reached the hub (a network blip) is sent again, twice at most.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { startTestHub, type TestHub } from './support/hub-fixture.ts';

let hub: TestHub | undefined;
let browser: Browser | undefined;

before(async () => {
  hub = await startTestHub();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hub?.stop();
});

async function assertAccessible(p: Page, where: string): Promise<void> {
  const result = await new AxeBuilder({ page: p }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help}`),
    [],
    `axe at ${where}`,
  );
  assert.ok(result.passes.length > 10, `axe ran its rules at ${where}`);
}

test('pages load on first visit; a chunk that fails shows an error with a Retry that works', async () => {
  const { context, page } = await openAsFirstAdmin(browser!, hub!, 'Nodes');
  const scripts = new Map<string, string>(); // URL path → body, every script the page fetched
  page.on('response', (res) => {
    const path = new URL(res.url()).pathname;
    if (path.startsWith('/assets/') && path.endsWith('.js') && res.ok())
      void res.text().then(
        (t) => scripts.set(path, t),
        () => {},
      );
  });
  try {
    await page.reload();
    await page.getByRole('heading', { name: 'Nodes' }).waitFor();
    await page.waitForLoadState('networkidle');
    const holds = (needle: string): boolean => [...scripts.values()].some((body) => body.includes(needle));
    assert.ok(holds('Loading nodes'), 'the Nodes page came with the first load');
    assert.ok(!holds('retried with backoff until the receiver answers 2xx'), 'the Alerts page came with the first load');
    const before = scripts.size;

    await page.getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await page.waitForLoadState('networkidle');
    assert.ok(scripts.size > before, 'visiting Alerts fetched no new script');
    assert.ok(holds('retried with backoff until the receiver answers 2xx'), 'the Alerts chunk was not fetched on the visit');
    assert.equal(await page.title(), 'Alerts · dockfleet');

    // The network drops every script request: the People page cannot arrive.
    let offline = true;
    await page.route('**/assets/*.js', (route) => (offline ? route.abort('internetdisconnected') : route.continue()));
    await page.getByRole('link', { name: 'People', exact: true }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'This page could not be loaded' });
    await alert.waitFor();
    assert.match(await alert.innerText(), /Check the connection/);
    await screenshot(page, 'lazy-page-error');
    await assertAccessible(page, 'chunk error at 1280 px');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertAccessible(page, 'chunk error at 390 px');
    await page.setViewportSize({ width: 1280, height: 900 });

    offline = false;
    await alert.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('heading', { name: 'People' }).waitFor();
    assert.equal(await alert.count(), 0, 'the error stayed after the page arrived');
  } finally {
    await context.close();
  }
});

test('a read that never reached the hub is sent again, twice at most: a blip goes unseen, an outage shows its error', async () => {
  const context = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  try {
    await page.goto(hub!.url);
    await page.getByLabel('Username').fill('ada');
    await page.getByLabel('Password').fill('a long enough passphrase');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const people = page.getByRole('link', { name: 'People', exact: true });
    await people.waitFor();

    // The first two tries of the users list never reach the hub; the third does.
    let tries = 0;
    let dropFirst = 2;
    await page.route('**/api/v1/users', (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      tries++;
      return tries <= dropFirst ? route.abort('internetdisconnected') : route.continue();
    });
    await people.click();
    const users = page.getByRole('table', { name: 'Users' });
    await users.getByRole('cell', { name: 'ada', exact: true }).waitFor();
    assert.equal(tries, 3, 'two dropped tries and the one that arrived');
    assert.equal(await page.getByText('The hub could not be reached').count(), 0);

    // Down for good: three tries, then the page says so.
    await page.getByRole('link', { name: 'Nodes', exact: true }).click();
    await page.getByRole('heading', { name: 'Nodes' }).first().waitFor();
    tries = 0;
    dropFirst = Number.POSITIVE_INFINITY;
    await people.click();
    await page.getByText('The hub could not be reached').first().waitFor();
    assert.equal(tries, 3, 'a read is tried three times in all');
    assert.equal(await users.count(), 0);
  } finally {
    await context.close();
  }
});
