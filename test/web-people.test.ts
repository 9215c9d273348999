/** People and access in a real browser (Debian's chromium) against a real hub and one real agent:
 * the admin creates a customer limited to granted nodes, grants one node, resets the password
 * (shown once), revokes a pending code; the enroll dialog keeps focus once the code shows and
 * waits visibly for the agent; the customer, signed in, sees only its node. axe finds nothing
 * serious or critical at 1280 and 390 px. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openAsFirstAdmin, reportTrouble } from './support/browser.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { type TestHub, waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

let rig: NodeRig | undefined;
let hub: TestHub;
let browser: Browser;
let page: Page;
let second: TestEngine[] = [];
let secondAgent: DockfleetProcess | undefined;
let work: string;

async function assertAccessible(p: Page, where: string): Promise<void> {
  const result = await new AxeBuilder({ page: p }).analyze();
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

before(async () => {
  rig = await startNodeRig('webpp', 'shop-01');
  hub = rig.hub;
  work = await mkdtemp(join(tmpdir(), 'dockfleet-webpp-'));
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, hub, 'People'));
});

after(async () => {
  await browser?.close();
  await secondAgent?.stop();
  if (second.length) await stopEngines(second);
  await stopNodeRig({ ...rig });
  if (work) await rm(work, { recursive: true, force: true });
});

test('enroll dialog: focus stays in the dialog when the code shows, and it says when the agent arrives', { timeout: 90_000 }, async () => {
  await page.getByRole('link', { name: 'Nodes', exact: true }).click();
  await page.getByRole('button', { name: 'Enroll node' }).first().click();
  await page.getByLabel('Node name').fill('later-01');
  await page.getByRole('button', { name: 'Create enrollment code' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('Waiting for the agent of later-01').waitFor();
  const inside = await page.evaluate(() => !!document.activeElement?.closest('dialog') && document.activeElement !== document.body);
  assert.ok(inside, 'focus is inside the dialog after the code appears');
  await page.keyboard.press('Tab');
  assert.ok(await page.evaluate(() => !!document.activeElement?.closest('dialog')), 'Tab stays in the dialog');
  await assertAccessible(page, 'enroll dialog, 1280 px');
  const code = (await dialog.locator('code[aria-label="Enrollment code"]').textContent({ timeout: 5_000 }))!.trim();
  second = await startEngines(1, { prefix: 'webpp2' });
  secondAgent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', join(work, 'agent2'), '--docker', second[0]!.dockerHost, '--policy', join(work, 'none.json')]);
  await dialog.getByText(/Node later-01 has connected/).waitFor({ timeout: 60_000 });
  await dialog.getByRole('button', { name: 'Done' }).click();
});

test('the admin creates a customer, grants one node, resets its password and revokes a pending code', { timeout: 60_000 }, async () => {
  await hub.api('POST', '/api/v1/enrollments', { name: 'spare-01' });
  await page.getByRole('link', { name: 'People', exact: true }).click();
  await page.getByRole('heading', { name: 'People', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'New user' }).click();
  await page.getByLabel('Username').fill('cust');
  await page.getByLabel('Access', { exact: true }).selectOption('granted');
  await page.getByLabel(/^Password/).fill('customer passphrase');
  await page.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator('tr', { hasText: 'cust' });
  await row.getByText('granted nodes only').waitFor();
  await page.getByRole('button', { name: 'Grants of cust' }).click();
  await page.getByLabel('Node name, or label key=value').fill('shop-01');
  await page.getByLabel('Role there').selectOption('operator');
  await page.getByRole('button', { name: 'Add grant' }).click();
  await page.getByRole('dialog').getByText('shop-01').waitFor();
  await assertAccessible(page, 'grants dialog, 1280 px');
  await page.getByRole('button', { name: 'Done' }).click();
  await row.getByText('shop-01 (operator)').waitFor();
  await page.getByRole('button', { name: 'Reset password of cust' }).click();
  const temporary = (await page.getByRole('dialog').locator('code[aria-label="Temporary password"]').textContent())!.trim();
  assert.match(temporary, /^[A-Za-z0-9_-]{20}$/);
  await page.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('button', { name: 'Revoke code for spare-01' }).click();
  await page.getByRole('button', { name: 'Revoke code for spare-01' }).waitFor({ state: 'detached' });
  assert.equal(
    (await hub.api('GET', '/api/v1/enrollments')).json.some((c: { node: string }) => c.node === 'spare-01'),
    false,
  );
  await assertAccessible(page, 'people page, 1280 px');
  await page.setViewportSize({ width: 390, height: 844 });
  await assertAccessible(page, 'people page, 390 px');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `people page scrolls sideways by ${overflow} px at 390`);
  await page.setViewportSize({ width: 1280, height: 900 });
  // Saved for the next test: the customer signs in with the temporary password.
  process.env.WEBPP_CUSTOMER_PASSWORD = temporary;
});

test('the customer, signed in, gets a shell of its own nodes: only the pages it may use, nothing of the other node, nothing failing', { timeout: 120_000 }, async () => {
  await runContainer(rig!.engine, { name: 'mine' });
  await runContainer(second[0]!, { name: 'theirs' });
  for (const [engine, vol] of [
    [rig!.engine, 'mine-data'],
    [second[0]!, 'theirs-data'],
  ] as const) {
    assert.equal((await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: vol })).status, 201);
  }
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes/later-01/containers')).json.length > 0, 15_000, 'inventory of later-01');
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes/shop-01/containers')).json.length > 0, 15_000, 'inventory of shop-01');
  for (const width of [1280, 390]) {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 900 } });
    reportTrouble(ctx);
    const p = await ctx.newPage();
    p.setDefaultTimeout(15_000);
    await p.goto(hub.url);
    await p.getByLabel('Username').fill('cust');
    await p.getByLabel('Password').fill(process.env.WEBPP_CUSTOMER_PASSWORD!);
    await p.getByRole('button', { name: 'Sign in' }).click();
    // Wait for the shell: navigating at once would abort the sign-in request itself.
    const nav = p.locator('nav#main-nav');
    await nav.waitFor({ state: 'attached' }); // behind the Menu button at 390 px
    // From here on, nothing the page asks for may be refused or fail.
    const trouble: string[] = [];
    p.on('response', (res) => {
      if (res.status() >= 400) trouble.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
    });
    p.on('pageerror', (err) => trouble.push(`page error: ${err.message}`));
    const links = await nav.locator('a').allTextContents();
    assert.deepEqual(
      links.map((l) => l.trim()),
      ['Nodes', 'Containers', 'Routes', 'Images', 'Volumes', 'Networks', 'Events', 'Audit', 'Account'],
      `nav at ${width}`,
    );

    await p.goto(`${hub.url}/nodes`);
    await p.locator('main').getByText('shop-01').first().waitFor();
    await assertAccessible(p, `customer nodes page, ${width} px`);
    assert.doesNotMatch(await p.locator('main').innerText(), /later-01/, `the other node is not listed at ${width}`);

    await p.goto(`${hub.url}/containers`);
    await p.locator('main').getByRole('link', { name: 'mine', exact: true }).waitFor();
    await assertAccessible(p, `customer containers page, ${width} px`);
    const containers = await p.locator('main').innerText();
    assert.doesNotMatch(containers, /later-01|theirs/, `no container or filter of the other node at ${width}`);

    for (const [kind, mine] of [
      ['images', 'dockfleet-test/busybox'],
      ['volumes', 'mine-data'],
      ['networks', 'bridge'],
    ] as const) {
      await p.goto(`${hub.url}/${kind}`);
      await p.locator('main tbody').getByText(mine).first().waitFor();
      await assertAccessible(p, `customer ${kind} page, ${width} px`);
      assert.doesNotMatch(await p.locator('main').innerText(), /later-01|theirs/, `${kind} of the other node at ${width}`);
    }

    await p.goto(`${hub.url}/account`);
    await p.getByRole('heading', { level: 1 }).first().waitFor();
    await assertAccessible(p, `customer account page, ${width} px`);

    // A fleet-wide page typed in: it says so, and asks the hub nothing.
    await p.goto(`${hub.url}/stacks`);
    await p.getByRole('heading', { name: 'Not available to your account' }).waitFor();
    await assertAccessible(p, `customer on a fleet-wide page, ${width} px`);

    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `customer view scrolls sideways by ${overflow} px at ${width}`);
    assert.deepEqual(trouble, [], `requests refused or failing for the customer at ${width}`);
    await ctx.close();
  }
});
