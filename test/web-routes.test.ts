/** The Routes page in a real browser (Debian's chromium) against a real hub, a real agent process
 * and a private engine whose containers carry ingress labels: the empty state says how to
 * publish a route; one good route, one with a malformed label and two claiming one host are
 * listed with their node, container, port, certificate and status, the mistake and the conflict
 * on their own rows; a certificate supplied for a host shows with its expiry; the page follows a container that stops and a node that goes offline without
 * a reload; the links reach the container page; axe finds nothing at 1280 and 1024 px, and
 * nothing scrolls sideways. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { engineRequest, runContainer, type TestEngine } from './support/engines.ts';
import { waitFor, type TestHub } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'edge-01';
let rig: NodeRig | undefined;
let engine: TestEngine;
let hub: TestHub;
let browser: Browser;
let page: Page;
let shopId: string;

interface ApiRoute {
  host: string;
  container: string;
  error: string | null;
  running: boolean;
  nodeOnline: boolean;
}

async function apiRoutes(): Promise<ApiRoute[]> {
  return (await hub.api('GET', '/api/v1/routes')).json as ApiRoute[];
}

function labelled(name: string, labels: Record<string, string>, port: number): Promise<string> {
  return runContainer(engine, { name, labels, config: { ExposedPorts: { [`${port}/tcp`]: {} } } });
}

/** The table row whose Route cell reads exactly `route` and whose Container cell reads `container`. */
function row(route: string, container: string): Locator {
  return page
    .locator('tr.route-row')
    .filter({ has: page.locator('td[data-label="Route"]', { hasText: new RegExp(`^${route.replace(/\./g, '\\.')}$`) }) })
    .filter({ has: page.locator('td[data-label="Container"]', { hasText: new RegExp(`^${container}$`) }) });
}

async function cell(r: Locator, label: string): Promise<string> {
  return (await r.locator(`td[data-label="${label}"]`).innerText()).replace(/\s+/g, ' ').trim();
}

/** axe-core over the whole page (the shell and the routes table): no violations of any impact. */
async function assertAccessible(p: Page, where: string): Promise<void> {
  const result = await new AxeBuilder({ page: p }).analyze();
  const found = result.violations.map(
    (v) =>
      `${v.id} (${v.impact}): ${v.help} — ${v.nodes
        .slice(0, 3)
        .map((n) => n.target.join(' '))
        .join('; ')}`,
  );
  assert.deepEqual(found, [], `axe at ${where}`);
  assert.ok(result.passes.length > 10, `axe ran its rules at ${where} (${result.passes.length} passed)`);
}

/** Neither the document nor the routes table scrolls sideways. */
async function assertNoOverflow(p: Page, where: string): Promise<void> {
  const widths = await p.evaluate(() => {
    const wrap = document.querySelector('.table-wrap');
    return {
      page: document.documentElement.scrollWidth - window.innerWidth,
      table: wrap ? wrap.scrollWidth - wrap.clientWidth : 0,
    };
  });
  assert.ok(widths.page <= 1, `${where}: the page scrolls sideways by ${widths.page} px`);
  assert.ok(widths.table <= 1, `${where}: the routes table scrolls sideways by ${widths.table} px`);
}

before(async () => {
  rig = await startNodeRig('webrt', NODE);
  ({ engine, hub } = rig);
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, hub, 'Routes'));
});

after(async () => {
  await browser?.close();
  await stopNodeRig({ ...rig });
});

test('with no labelled container, the page says how to publish a route', async () => {
  await page.getByRole('link', { name: 'Routes', exact: true }).click();
  await page.getByRole('heading', { name: 'Routes', level: 1 }).waitFor();
  await page.getByText('No routes yet').waitFor();
  const empty = (await page.locator('.state-empty').textContent()) ?? '';
  assert.match(empty, /--label dockfleet\.ingress\.host=/);
  assert.match(empty, /dockfleet\.ingress\.port=/);
  assert.match(empty, /--edge-listen/);
  assert.equal(await page.getByRole('link', { name: 'Routes', exact: true }).getAttribute('aria-current'), 'page');
  await assertAccessible(page, 'the empty state, 1280 px');
});

test('a good route, a malformed label and two containers claiming one host: each on its row with its state', { timeout: 60_000 }, async () => {
  shopId = await labelled('shop', { 'dockfleet.ingress.host': 'shop.test', 'dockfleet.ingress.port': '8080' }, 8080);
  await labelled('broken', { 'dockfleet.ingress.host': 'broken.test', 'dockfleet.ingress.port': 'http' }, 8080);
  await labelled('blog-a', { 'dockfleet.ingress.host': 'blog.test', 'dockfleet.ingress.access': 'users' }, 80);
  // Created a second apart: the first claim wins (the list's Created has whole seconds).
  await new Promise((r) => setTimeout(r, 1_100));
  await labelled('blog-b', { 'dockfleet.ingress.host': 'blog.test' }, 80);

  // The page was open all along: the rows arrive without a reload.
  const shop = row('shop.test', 'shop');
  const broken = row('broken.test', 'broken');
  const blogA = row('blog.test', 'blog-a');
  const blogB = row('blog.test', 'blog-b');
  for (const r of [shop, broken, blogA, blogB]) await r.waitFor();
  assert.equal(await page.locator('tr.route-row').count(), 4);
  await screenshot(page, 'routes-1280');

  assert.equal(await cell(shop, 'Node'), NODE);
  assert.equal(await shop.getByRole('link', { name: NODE }).getAttribute('href'), `/containers?node=${NODE}`);
  assert.equal(await shop.getByRole('link', { name: 'shop' }).getAttribute('href'), `/containers/${NODE}/${shopId}`);
  assert.equal(await cell(shop, 'Port'), '8080 http');
  assert.equal(await cell(shop, 'Access'), 'public');
  assert.equal(await cell(shop, 'Certificate'), 'none');
  assert.equal(await cell(shop, 'Status'), 'served');

  assert.match(await cell(broken, 'Status'), /^label error dockfleet\.ingress\.port: "http" is not a port \(1-65535\)$/);
  assert.equal(await cell(broken, 'Port'), '— http');

  assert.equal(await cell(blogA, 'Status'), 'served');
  assert.equal(await cell(blogA, 'Access'), 'users');
  assert.equal(await cell(blogA, 'Port'), '80 http', 'the single exposed port, with no port label');
  assert.equal(await cell(blogB, 'Status'), `conflict blog.test/ already served by ${NODE}/blog-a`);

  // The page and the API agree on which rows are not served.
  const api = await apiRoutes();
  assert.deepEqual(
    api
      .filter((r) => r.error !== null)
      .map((r) => r.container)
      .sort(),
    ['blog-b', 'broken'],
  );
  assert.match((await page.locator('.page-sub').textContent()) ?? '', /4 routes, 2 not served/);
});

test('a certificate supplied for a host shows on its row as supplied, with its expiry', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dockfleet-webrt-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '90',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=shop.test',
        '-addext',
        'subjectAltName=DNS:shop.test',
      ],
      { stdio: 'ignore' },
    );
    const certPem = await readFile(join(dir, 'cert.pem'), 'utf8');
    const added = await hub.api('POST', '/api/v1/certificates', { certPem, keyPem: await readFile(join(dir, 'key.pem'), 'utf8') });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    const notAfter = new Date(new X509Certificate(certPem).validTo);
    const shop = row('shop.test', 'shop');
    await waitFor(async () => (await cell(shop, 'Certificate')).startsWith('supplied'), 10_000, 'the row to show the supplied certificate', 100);
    const text = await cell(shop, 'Certificate');
    assert.match(text, /^supplied until /);
    assert.ok(text.includes(String(notAfter.getFullYear())), `the expiry date is shown (${text})`);
    assert.equal(await cell(row('broken.test', 'broken'), 'Certificate'), 'none', 'a host without a certificate of its own still reads none');
    await screenshot(page, 'routes-supplied-1280');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('at 1280 and 1024 px: axe finds nothing, and nothing scrolls sideways', async () => {
  await assertAccessible(page, 'the routes table, 1280 px');
  await assertNoOverflow(page, '1280 px');
  await page.setViewportSize({ width: 1024, height: 800 });
  await row('shop.test', 'shop').waitFor();
  await screenshot(page, 'routes-1024');
  await assertAccessible(page, 'the routes table, 1024 px');
  await assertNoOverflow(page, '1024 px');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('a container that stops is shown not running without a reload', async () => {
  const shop = row('shop.test', 'shop');
  await shop.waitFor();
  assert.equal(await cell(shop, 'Status'), 'served');
  const stopped = await engineRequest(engine.socketPath, 'POST', `/containers/${shopId}/stop?t=0`);
  assert.equal(stopped.status, 204);
  const t0 = Date.now();
  await waitFor(async () => (await cell(shop, 'Status')).startsWith('not running'), 10_000, 'the row to say not running', 50);
  const took = Date.now() - t0;
  assert.match(await cell(shop, 'Status'), /not running answers 503/);
  assert.equal((await apiRoutes()).find((r) => r.container === 'shop')?.running, false);
  process.stderr.write(`[web-routes] stop → row updated in ${took} ms\n`);
});

test('the container link opens the container page', async () => {
  await row('blog.test', 'blog-a').getByRole('link', { name: 'blog-a' }).click();
  await page.getByRole('heading', { name: /blog-a/, level: 1 }).waitFor();
  await page.goBack();
  await row('blog.test', 'blog-a').waitFor();
});

test('a node that goes offline marks its routes, still listed', async () => {
  await rig!.agent.stop();
  await waitFor(async () => (await cell(row('blog.test', 'blog-a'), 'Status')).startsWith('node offline'), 15_000, 'the row to say node offline', 100);
  assert.match(await cell(row('blog.test', 'blog-a'), 'Status'), /answers 502/);
  // A mistake stays the reason its row is not served, offline or not.
  assert.match(await cell(row('broken.test', 'broken'), 'Status'), /^label error/);
  assert.equal(await page.locator('tr.route-row').count(), 4);
  await screenshot(page, 'routes-offline-1280');
});
