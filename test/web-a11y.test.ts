/** One accessibility sweep over every page of the web UI, in Debian's chromium against a real hub,
 * one real agent (in this process) and a private engine: a running container with a volume, a deployed
 * stack (so stack and job pages have content), a second user and an alert receiver. The setup
 * and sign-in pages before signing in, then, signed in as the first admin, every route of
 * src/web/app.tsx's table (the container's tabs, the node's resource pages, the volume's files,
 * the stack, a job, the edge hand-off…) at 1280 px and 390 px: each page's heading and content
 * are waited for, axe-core finds no serious or critical violation (page and rule named on
 * failure), and at 390 px nothing scrolls sideways. The main dialogs (enroll, prune plan, create
 * volume, confirm remove) are opened once each, with axe run on the open dialog. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Locator, Page } from 'playwright-core';
import { gotoSteadily, launchBrowser, openAsFirstAdmin, reportTrouble } from './support/browser.ts';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';

const NODE = 'a11y-01';
const PASSWORD = 'a long enough passphrase';
// Every section the pages can show, so the container's Files tab and the volume's files have content.
const SECTIONS = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'archive', 'images', 'build', 'volumes', 'networks', 'distribution', 'volumeFiles', 'ingress'];
let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: TestAgent | undefined;
let dir = '';
let browser: Browser | undefined;
let page: Page;
let containerId = '';
let jobId = '';

/** axe-core over what `include` selects (the whole page by default): nothing serious or critical. */
async function assertAccessible(p: Page, where: string, include?: string): Promise<void> {
  const t0 = Date.now();
  let builder = new AxeBuilder({ page: p });
  if (include) builder = builder.include(include);
  const result = await builder.analyze();
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
  assert.ok(result.passes.length > 5, `axe ran its rules at ${where} (${result.passes.length} passed)`);
  if (process.env.A11Y_TIMES) process.stderr.write(`axe at ${where}: ${Date.now() - t0} ms\n`);
}

/** The document does not scroll sideways; on failure, names the widest elements that stick out. */
async function assertNoSidewaysScroll(p: Page, where: string): Promise<void> {
  const { over, culprits } = await p.evaluate(() => {
    const width = window.innerWidth;
    const out = [...document.querySelectorAll('body *')]
      .map((el) => ({ el, right: el.getBoundingClientRect().right }))
      .filter((x) => x.right > width + 1 && !x.el.closest('.sr-only'))
      .slice(-4)
      .map((x) => `${x.el.tagName.toLowerCase()}${x.el.className && typeof x.el.className === 'string' ? `.${x.el.className.trim().split(/\s+/).join('.')}` : ''} (right ${Math.round(x.right)})`);
    return { over: document.documentElement.scrollWidth - width, culprits: out };
  });
  assert.ok(over <= 1, `${where} scrolls sideways by ${over} px: ${culprits.join(', ')}`);
}

/** Visits PATH and waits for its heading, `ready` when given, and no loading spinner left. A load
 * Chromium dropped (ERR_NETWORK_CHANGED on a subresource, while test engines add interfaces) is
 * tried again, a few times; the last failure is thrown with what the page showed. */
async function visit(p: Page, path: string, heading: string | RegExp, ready?: (p: Page) => Locator): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const timeout = attempt >= 3 ? 15_000 : 8_000;
    const t0 = Date.now();
    try {
      await gotoSteadily(p, `${hub!.url}${path}`);
      await p.getByRole('heading', { level: 1, name: heading }).first().waitFor({ timeout });
      if (ready) await ready(p).first().waitFor({ timeout });
      await waitFor(async () => (await p.locator('.state-loading').count()) === 0, timeout, `${path} to finish loading`, 50);
      if (process.env.A11Y_TIMES) process.stderr.write(`${path} ready in ${Date.now() - t0} ms\n`);
      return;
    } catch (err) {
      if (process.env.A11Y_TIMES)
        process.stderr.write(
          `${path}: attempt ${attempt} failed after ${Date.now() - t0} ms: ${(err as Error).message.split('\n')[0]}; page: ${(
            await p
              .locator('body')
              .innerText()
              .catch(() => '')
          ).slice(0, 200)}\n`,
        );
      if (attempt >= 3)
        throw new Error(
          `${path}: ${(err as Error).message}\n${await p
            .locator('body')
            .innerText()
            .catch(() => '')}`,
        );
    }
  }
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'a11y' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-a11y-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  const policy = join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ sections: Object.fromEntries(SECTIONS.map((s) => [s, true])) }));
  agent = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, NODE), stateDir: join(dir, 'agent'), docker: engine.dockerHost, policy });
  await agent.waitConnected(1, 30_000);

  // A running container writing into a volume, and a second, stopped one (the "exited" badge).
  await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'shop-data' });
  containerId = await runContainer(engine, {
    name: 'shop',
    cmd: ['sh', '-c', 'echo ready > /data/hello.txt; mkdir -p /srv/app && echo hi > /srv/app/app.ini; while true; do echo tick; sleep 2; done'],
    hostConfig: { Binds: ['shop-data:/data'] },
    labels: { 'dockfleet.ingress.host': 'shop.test', 'dockfleet.ingress.port': '8080' },
  });
  await runContainer(engine, { name: 'done', cmd: ['true'] });

  // An alert receiver (its URL never answers: nothing is sent in this test). The second user
  // comes once the first admin has signed up through the setup page (the first test).
  const rx = await hub.api('POST', '/api/v1/alert-receivers', { name: 'ops', format: 'json', url: 'https://127.0.0.1:9/hook' });
  assert.equal(rx.status, 201, JSON.stringify(rx.json));

  // A stack deployed through the REST API, waited for until its job ends. A job that failed (an
  // engine too slow on a loaded machine) still gives the stack and job pages content to check.
  const compose = `services:\n  web:\n    image: ${BUSYBOX_IMAGE}\n    command: ['sleep', '3600']\n`;
  const deploy = await hub.api('POST', '/api/v1/stacks/shopfront/deploy', { compose, target: { node: NODE }, gate: { stableMs: 500, deadlineMs: 60_000 } });
  assert.equal(deploy.status, 202, JSON.stringify(deploy.json));
  jobId = await waitFor(
    async () => {
      const jobs = (await hub!.api('GET', '/api/v1/jobs')).json as Array<{ id: string; state: string }>;
      return jobs.find((j) => j.state === 'succeeded' || j.state === 'failed')?.id;
    },
    120_000,
    'the stack job to end',
    200,
  );

  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('before signing in: the setup page, then the sign-in page, at 1280 and 390 px', { timeout: 60_000 }, async () => {
  for (const width of [1280, 390]) {
    const ctx = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 844 }, reducedMotion: 'reduce' });
    reportTrouble(ctx);
    const p = await ctx.newPage();
    p.setDefaultTimeout(15_000);
    await visit(p, '/', 'Create the first account');
    await assertAccessible(p, `setup, ${width} px`);
    await assertNoSidewaysScroll(p, `setup, ${width} px`);
    await ctx.close();
  }
  ({ page } = await openAsFirstAdmin(browser!, { url: hub!.url, dataDir: join(dir, 'hub') }, 'Nodes'));
  assert.equal((await hub!.api('POST', '/api/v1/users', { name: 'grace', role: 'viewer', password: PASSWORD })).status, 201);
  for (const width of [1280, 390]) {
    const ctx = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 844 }, reducedMotion: 'reduce' });
    reportTrouble(ctx);
    const p = await ctx.newPage();
    p.setDefaultTimeout(15_000);
    await visit(p, '/', 'Sign in', (q) => q.getByLabel('Password'));
    await assertAccessible(p, `sign-in, ${width} px`);
    await assertNoSidewaysScroll(p, `sign-in, ${width} px`);
    // An app on the edge sent the browser here: the sign-in page with its notice.
    await visit(p, '/edge-sign-in?host=shop.test&return=/', 'Sign in', (q) => q.getByText(/Sign in to continue to shop\.test/));
    await assertAccessible(p, `edge sign-in (signed out), ${width} px`);
    await assertNoSidewaysScroll(p, `edge sign-in (signed out), ${width} px`);
    await ctx.close();
  }
});

interface Route {
  path: () => string;
  heading: string | RegExp;
  ready?: (p: Page) => Locator;
}

const c = (tab = ''): string => `/containers/${NODE}/${containerId}${tab}`;
const ROUTES: Route[] = [
  { path: () => '/nodes', heading: 'Nodes', ready: (p) => p.getByRole('article', { name: new RegExp(NODE) }) },
  { path: () => '/containers', heading: 'Containers', ready: (p) => p.getByRole('link', { name: 'shop', exact: true }) },
  { path: () => c(), heading: /shop/, ready: (p) => p.getByRole('heading', { name: 'Resource use' }) },
  { path: () => c('/logs'), heading: /shop/, ready: (p) => p.getByText('tick') },
  { path: () => c('/terminal'), heading: /shop/, ready: (p) => p.getByText(/Connected: /) },
  { path: () => c('/files'), heading: /shop/, ready: (p) => p.getByRole('heading', { name: /Files in/ }) },
  { path: () => c('/edit'), heading: 'Change shop', ready: (p) => p.getByRole('button', { name: 'Recreate' }) },
  { path: () => '/containers/run', heading: 'Run a container', ready: (p) => p.getByLabel('Image', { exact: true }) },
  { path: () => '/images', heading: 'Images', ready: (p) => p.locator('tbody tr') },
  { path: () => '/volumes', heading: 'Volumes', ready: (p) => p.locator('tbody tr').filter({ hasText: 'shop-data' }) },
  { path: () => '/networks', heading: 'Networks', ready: (p) => p.locator('tbody tr').filter({ hasText: 'bridge' }) },
  { path: () => `/nodes/${NODE}/images`, heading: 'Images', ready: (p) => p.locator('tbody tr') },
  { path: () => `/nodes/${NODE}/volumes`, heading: 'Volumes', ready: (p) => p.locator('tbody tr').filter({ hasText: 'shop-data' }) },
  { path: () => `/nodes/${NODE}/networks`, heading: 'Networks', ready: (p) => p.locator('tbody tr').filter({ hasText: 'bridge' }) },
  { path: () => `/nodes/${NODE}/volumes/shop-data/files`, heading: /shop-data/, ready: (p) => p.getByText('hello.txt') },
  { path: () => '/stacks', heading: 'Stacks', ready: (p) => p.getByRole('link', { name: 'shopfront' }) },
  { path: () => '/stacks/deploy', heading: 'Deploy a stack', ready: (p) => p.getByLabel('Compose file') },
  { path: () => '/stacks/shopfront', heading: /shopfront/, ready: (p) => p.getByRole('heading', { name: 'Revisions' }) },
  { path: () => '/jobs', heading: 'Jobs', ready: (p) => p.locator('tbody tr') },
  { path: () => `/jobs/${jobId}`, heading: 'Job', ready: (p) => p.locator('.job-progress .job-state') },
  { path: () => '/routes', heading: 'Routes', ready: (p) => p.locator('tr.route-row') },
  { path: () => '/events', heading: 'Events', ready: (p) => p.locator('main li, main tbody tr') },
  { path: () => '/audit', heading: 'Audit log', ready: (p) => p.locator('main tbody tr, main li') },
  { path: () => '/alerts', heading: 'Alerts', ready: (p) => p.getByText('ops') },
  { path: () => '/people', heading: 'People', ready: (p) => p.getByText('grace') },
  { path: () => '/account', heading: 'Account' },
  { path: () => '/no-such-page', heading: 'Page not found' },
];

for (const width of [1280, 390]) {
  test(`every signed-in page at ${width} px: no serious or critical axe violation${width === 390 ? ', nothing scrolls sideways' : ''}`, { timeout: 300_000 }, async () => {
    assert.ok(page, 'signed in by the first test');
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    for (const route of ROUTES) {
      const where = `${route.path()} at ${width} px`;
      const t0 = Date.now();
      await visit(page, route.path(), route.heading, route.ready);
      const t1 = Date.now();
      await assertAccessible(page, where);
      if (width === 390) await assertNoSidewaysScroll(page, where);
      if (process.env.A11Y_TIMES) process.stderr.write(`${where}: load ${t1 - t0} ms, axe ${Date.now() - t1} ms\n`);
    }
    // The edge hand-off signed in: this hub has no edge, so the page says it cannot continue.
    await visit(page, '/edge-sign-in?host=shop.test&return=/', /sign in to shop\.test/i);
    await assertAccessible(page, `edge sign-in (signed in) at ${width} px`);
    if (width === 390) await assertNoSidewaysScroll(page, `edge sign-in (signed in) at ${width} px`);
  });
}

test('the main dialogs, open: enroll, prune plan, create volume, confirm remove', { timeout: 90_000 }, async () => {
  await page.setViewportSize({ width: 1280, height: 900 });
  const openDialog = (name: string | RegExp) => page.locator('dialog[open]').filter({ has: page.getByRole('heading', { name }) });

  await visit(page, '/nodes', 'Nodes', (p) => p.getByRole('article', { name: new RegExp(NODE) }));
  await page.getByRole('button', { name: 'Enroll node' }).first().click();
  await openDialog('Enroll a node').waitFor();
  await assertAccessible(page, 'the enroll dialog', 'dialog[open]');
  await page.getByLabel('Node name').fill('a11y-02');
  await page.locator('dialog[open]').getByRole('button', { name: 'Create enrollment code' }).click();
  await page.locator('dialog[open]').getByLabel('Agent command').waitFor();
  await assertAccessible(page, 'the enroll dialog with its code', 'dialog[open]');
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  await visit(page, '/volumes', 'Volumes', (p) => p.locator('tbody tr').filter({ hasText: 'shop-data' }));
  await page.getByRole('button', { name: 'Prune…' }).click();
  await page.locator('dialog[open]').waitFor();
  await waitFor(async () => (await page.locator('dialog[open] .state-loading').count()) === 0, 15_000, 'the prune plan');
  await assertAccessible(page, 'the prune plan', 'dialog[open]');
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  await page.getByRole('button', { name: 'Create volume…' }).click();
  await page.locator('dialog[open]').getByLabel('Node').waitFor();
  await assertAccessible(page, 'the create-volume dialog', 'dialog[open]');
  await page.keyboard.press('Escape');
  await page.locator('dialog[open]').waitFor({ state: 'detached' });

  await visit(page, '/containers', 'Containers', (p) => p.getByRole('link', { name: 'done', exact: true }));
  await page.getByRole('button', { name: 'Remove done' }).click();
  await page.getByRole('alertdialog').waitFor();
  await assertAccessible(page, 'the confirm-remove dialog', 'dialog[open]');
  await page.keyboard.press('Escape');
  await page.getByRole('alertdialog').waitFor({ state: 'detached' });
});
