// Stats in the browser (Debian's chromium) against a real engine and agent: the CPU sparkline in
// the Containers list, the lazy charts on the detail page, the host's use on the node card,
// at 1280 and 390 px, with axe-core finding no serious or critical violations.
// Run: CI=true node --import tsx --test test/web-stats.test.ts
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { gotoSteadily, launchBrowser, reportTrouble, screenshot } from './support/browser.ts';
import { runContainer } from './support/engines.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'stats-web';
let rig: NodeRig;
let browser: Browser;
let page: Page;
let burner: string;

async function noSeriousViolations(p: Page, what: string): Promise<void> {
  const result = await new AxeBuilder({ page: p }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes[0]?.target}`),
    [],
    `${what}: axe violations`,
  );
}

before(async () => {
  rig = await startNodeRig('webstats', NODE);
  burner = await runContainer(rig.engine, { name: 'burner', cmd: ['sh', '-c', 'while :; do :; done'] });
  browser = await launchBrowser();
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  reportTrouble(context);
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await gotoSteadily(page, rig.hub.url);
  await page.getByLabel('Setup code').fill((await readFile(join(rig.hub.dataDir, 'setup.code'), 'utf8')).trim());
  await page.getByLabel('Username').fill('ada');
  await page.getByLabel('Password').fill('a long enough passphrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Nodes' }).waitFor();
});

after(async () => {
  await browser?.close();
  if (rig) await stopNodeRig(rig);
});

test('the Containers list shows a live CPU sparkline for a busy container', async () => {
  await gotoSteadily(page, `${rig.hub.url}/containers`);
  const spark = page.locator(`[data-stats="c:${NODE}/${burner}"]`);
  await spark.waitFor();
  await page.waitForFunction(
    (sel) => {
      const v = document.querySelector(sel)?.querySelector('.sparkline-value')?.textContent ?? '';
      return Number.parseFloat(v) > 50 && (document.querySelector(sel)?.querySelector('polyline')?.getAttribute('points') ?? '') !== '';
    },
    `[data-stats="c:${NODE}/${burner}"]`,
    { timeout: 10_000 },
  );
  await screenshot(page, 'stats-containers-1280');
  await noSeriousViolations(page, 'containers 1280');
});

test('the detail page loads the charts as a lazy chunk and draws CPU over 50 %', async () => {
  const chunks: string[] = [];
  page.on('response', (r) => {
    if (r.url().includes('/assets/chunk-')) chunks.push(r.url());
  });
  await gotoSteadily(page, `${rig.hub.url}/containers/${NODE}/${burner}`);
  await page.getByRole('heading', { name: 'Resource use' }).waitFor();
  const cpu = page.getByRole('img', { name: /^CPU: CPU \d/ });
  await cpu.waitFor();
  await page.waitForFunction(
    () =>
      /CPU: CPU (\d+\.\d) %/.exec(document.querySelector('[aria-label^="CPU: CPU"]')?.getAttribute('aria-label') ?? '')?.[1] !== undefined &&
      Number(/CPU: CPU (\d+\.\d) %/.exec(document.querySelector('[aria-label^="CPU: CPU"]')!.getAttribute('aria-label')!)![1]) > 50,
    undefined,
    { timeout: 10_000 },
  );
  assert.ok(chunks.length > 0, 'a lazy chunk was fetched for the charts');
  await screenshot(page, 'stats-detail-1280');
  await noSeriousViolations(page, 'detail 1280');
});

test('the node card says how busy the host is now; the phone layout holds', async () => {
  await gotoSteadily(page, `${rig.hub.url}/nodes`);
  const use = page.locator(`[data-host-use="${NODE}"]`);
  await page.waitForFunction((sel) => /CPU \d+ % · memory \d+ %/.test(document.querySelector(sel)?.textContent ?? ''), `[data-host-use="${NODE}"]`, { timeout: 10_000 });
  assert.match((await use.textContent()) ?? '', /of/);
  await page.setViewportSize({ width: 390, height: 844 });
  await noSeriousViolations(page, 'nodes 390');
  await gotoSteadily(page, `${rig.hub.url}/containers`);
  await page.locator(`[data-stats="c:${NODE}/${burner}"]`).waitFor();
  await screenshot(page, 'stats-containers-390');
  await noSeriousViolations(page, 'containers 390');
});
