/**
 * The Alerts page in chromium against a real hub, engine and agent: an admin adds a webhook
 * receiver (a real HTTP server on 127.0.0.1) through the form, the Test button delivers to it
 * and says so, the stored URL and header never show again; stopping the agent brings the
 * node-offline incident onto the open page (polled) with its delivery sent; the receiver can be
 * disabled and deleted; a viewer sees the incident but no receiver settings. axe-core finds no
 * serious or critical violation at 1280 and 390 px, and nothing scrolls sideways at 390 px.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, reportTrouble, screenshot } from './support/browser.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

interface Received {
  path: string;
  auth: string | undefined;
  body: any;
}

const NODE = 'alerts-01';
let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let browser: Browser | undefined;
let dir = '';
const got: Received[] = [];
const receiver = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let body: unknown = null;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      /* not JSON */
    }
    got.push({ path: req.url ?? '', auth: req.headers.authorization, body });
    res.writeHead(200).end();
  });
});
let rxUrl = '';

before(async () => {
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  rxUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-web-alerts-'));
  [engine] = (await startEngines(1, { prefix: 'walerts' })) as [TestEngine];
  hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort(), run: { alertTuning: { offlineGraceMs: 1_000, delivery: { retryBaseMs: 300 } } } });
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, NODE), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'no-policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  await new Promise<void>((r) => receiver.close(() => r()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function newPage(): Promise<Page> {
  const context = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  reportTrouble(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

async function assertAccessible(page: Page, where: string): Promise<void> {
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

test('admin: add a receiver through the form, test it, see the node-offline incident delivered; a viewer sees no settings', { timeout: 120_000 }, async () => {
  const page = await newPage();
  // A fresh engine's bridge can make chromium see a network change and drop the first load: retry it.
  await waitFor(
    async () => {
      await page.goto(hub!.url).catch(() => undefined);
      return page
        .getByLabel('Setup code')
        .waitFor({ timeout: 3000 })
        .then(
          () => true,
          () => false,
        );
    },
    30_000,
    'the sign-up page',
  );
  await page.getByLabel('Setup code').fill((await readFile(join(hub!.dataDir, 'setup.code'), 'utf8')).trim());
  await page.getByLabel('Username').fill('mara');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Alerts', exact: true }).click();
  await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
  await page.getByText('Nothing is wrong right now').waitFor();

  // A receiver whose URL and header carry secrets, added through the form.
  await page.getByRole('heading', { name: 'Receivers' }).waitFor();
  await page.getByLabel('Receiver name').fill('ops');
  await page.getByLabel('Format').selectOption('json');
  await page.getByLabel('Webhook URL').fill(`${rxUrl}/hook?key=urlsecret123`);
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Header 1 name').fill('Authorization');
  await page.getByLabel('Header 1 value').fill('Bearer hdrsecret456');
  await page.getByRole('button', { name: 'Add receiver' }).click();
  const row = page.locator('tr[data-receiver="ops"]');
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(`${rxUrl.replace(/[.:/]/g, '\\$&')}/…`));
  assert.match(await row.innerText(), /headers: authorization/i);
  assert.equal(await page.getByLabel('Webhook URL').inputValue(), '', 'the form forgets the URL once stored');
  const shown = await page.content();
  assert.ok(!shown.includes('urlsecret123') && !shown.includes('hdrsecret456'), 'stored secrets are never shown back');

  // The test button delivers and says what the receiver answered.
  await row.getByRole('button', { name: 'Send a test to ops' }).click();
  await row.getByRole('status').filter({ hasText: 'Test delivered (HTTP 200)' }).waitFor();
  const test = got.find((g) => g.body?.event === 'test');
  assert.ok(test, 'the receiver got the test message');
  assert.equal(test.path, '/hook?key=urlsecret123');
  assert.equal(test.auth, 'Bearer hdrsecret456');
  // The hub keeps the outcome as the receiver's latest test: it is still there after a reload.
  await page.reload();
  const kept = page.locator('tr[data-receiver="ops"] .last-test');
  await kept.waitFor();
  assert.match(await kept.innerText(), /^Last test: delivered HTTP 200 · \S/);

  // The agent stops: the incident appears without a reload, its delivery sent exactly once.
  await agent!.stop();
  const incident = page.locator('section[aria-labelledby="al-open"] li.alert-item[data-kind="node-offline"]');
  await incident.filter({ hasText: `Node ${NODE} is offline` }).waitFor({ timeout: 30_000 });
  await incident.locator('li[data-state="sent"]').filter({ hasText: 'ops' }).waitFor({ timeout: 15_000 });
  const text = await incident.innerText();
  assert.match(text, /critical/);
  assert.match(text, /Opened .*ago|Opened just now|Opened/);
  assert.equal(await incident.getByRole('link', { name: NODE }).getAttribute('href'), `/containers?node=${NODE}`);
  assert.equal(got.filter((g) => g.body?.event === 'opened' && g.body?.incident?.kind === 'node-offline').length, 1, 'one message for the incident');
  assert.ok((await page.locator('#al-open').innerText()).includes('(1)'));
  await screenshot(page, 'alerts-1280');
  await assertAccessible(page, 'alerts, 1280 px');

  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow} px at 390`);
  await screenshot(page, 'alerts-390');
  await assertAccessible(page, 'alerts, 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  // Disable, then delete (after a confirmation).
  await row.getByRole('button', { name: 'Disable ops' }).click();
  await row.getByText('disabled', { exact: true }).waitFor();
  const listed = await hub!.api('GET', '/api/v1/alert-receivers');
  assert.equal(listed.json[0].enabled, false);

  // A viewer sees the incident but no receiver settings (and the API refuses them).
  const made = await hub!.api('POST', '/api/v1/users', { name: 'vic', role: 'viewer', password: 'vics own passphrase' });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const vpage = await newPage();
  await vpage.goto(`${hub!.url}/alerts`);
  await vpage.getByLabel('Username').fill('vic');
  await vpage.getByLabel('Password').fill('vics own passphrase');
  await vpage.getByRole('button', { name: 'Sign in' }).click();
  await vpage.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
  await vpage.locator('li.alert-item[data-kind="node-offline"]').first().waitFor();
  assert.equal(await vpage.getByRole('heading', { name: 'Receivers' }).count(), 0);
  assert.equal(await vpage.getByLabel('Webhook URL').count(), 0);
  const status = await vpage.evaluate(async () => (await fetch('/api/v1/alert-receivers')).status);
  assert.equal(status, 403);
  await assertAccessible(vpage, 'alerts as viewer, 1280 px');
  await vpage.context().close();

  await row.getByRole('button', { name: 'Delete ops' }).click();
  await page.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await hub!.api('GET', '/api/v1/alert-receivers')).json.length, 0);
  await page.context().close();
});
