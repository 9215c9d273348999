/** Stacks in the web UI, in a real browser (Debian's chromium) against a real hub, a real agent
 * process and a private engine: the Compose editor shows a schema error with its line as you
 * type; a busybox stack deployed from the UI shows live progress and ends healthy; the stack
 * page shows its history and a diff between revisions 1 and 2; a rollback from the UI; node
 * labels edited on the nodes page reach the API; the pages hold at phone width. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, reportTrouble, screenshot } from './support/browser.ts';
import { BUSYBOX_IMAGE, engineRequest, type TestEngine } from './support/engines.ts';
import { waitFor, type TestHub } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'shop-01';
const USER = 'grace';
const PASSWORD = 'a long enough passphrase';
let engine: TestEngine;
let hub: TestHub;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let rig: NodeRig | undefined;

function compose(release: string): string {
  return [
    'services:',
    '  web:',
    `    image: ${BUSYBOX_IMAGE}`,
    "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 3600']",
    '    healthcheck:',
    "      test: ['CMD-SHELL', 'test -f /tmp/ready']",
    '      interval: 300ms',
    '      retries: 3',
    '    labels:',
    `      release: ${release}`,
    '',
  ].join('\n');
}

async function stackContainers(): Promise<Array<{ State: string; Labels: Record<string, string> }>> {
  const filters = encodeURIComponent(JSON.stringify({ label: ['com.docker.compose.project=shop'] }));
  return (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json;
}

/** Fills the deploy form's gate (short, so tests stay quick) and deploys; returns the job states seen. */
async function deployFromForm(): Promise<string[]> {
  await page.getByLabel('Stable window (s)').fill('1');
  await page.getByLabel('Gate deadline (s)').fill('60');
  await page.getByRole('button', { name: 'Deploy', exact: true }).click();
  const job = page.locator('.job-progress').first();
  await job.waitFor();
  const seen = new Set<string>();
  await waitFor(
    async () => {
      const text = (await job.locator('.job-state').textContent()) ?? '';
      for (const s of ['queued', 'running', 'succeeded', 'failed']) if (text.includes(s)) seen.add(s);
      return seen.has('succeeded') || seen.has('failed');
    },
    90_000,
    'the job to end',
    100,
  );
  return [...seen];
}

before(async () => {
  rig = await startNodeRig('webstk', NODE);
  ({ engine, hub } = rig);
  browser = await launchBrowser();
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  reportTrouble(context);
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(hub.url);
  await page.getByLabel('Setup code').fill((await readFile(join(hub.dataDir, 'setup.code'), 'utf8')).trim());
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Stacks' }).waitFor();
});

after(async () => {
  await browser?.close();
  await stopNodeRig({ ...rig });
});

test('the Compose editor shows a schema error with its line as you type, and clears it when fixed', async () => {
  await page.goto(`${hub.url}/stacks`);
  await page.getByRole('link', { name: 'Deploy a stack' }).click();
  const editor = page.getByLabel('Compose file');
  await editor.fill(['services:', '  web:', `    image: ${BUSYBOX_IMAGE}`, '    ports: 8080', ''].join('\n'));
  const issues = page.locator('.compose-issues');
  await issues.getByText(/services\.web\.ports/).waitFor();
  assert.match((await issues.textContent()) ?? '', /Line 4.*services\.web\.ports.*must be array/);
  assert.equal(await page.locator('.gutter-line.bad').textContent(), '!4', 'line 4 is marked in the gutter');
  await screenshot(page, 'stack-editor-error-1280');
  // An unknown key, typed key by key, is named with its line too.
  await editor.fill(['services:', '  web:', `    image: ${BUSYBOX_IMAGE}`, ''].join('\n'));
  await editor.press('Control+End');
  await editor.pressSequentially('    imagee: x');
  await issues.getByText(/"imagee" is not a Compose Specification key here/).waitFor();
  assert.match((await issues.textContent()) ?? '', /Line 4/);
  // A key the Compose Specification allows but dockfleet does not carry is named, not dropped.
  await editor.fill(['services:', '  web:', `    image: ${BUSYBOX_IMAGE}`, '    privileged: true', ''].join('\n'));
  await issues.getByText(/privileged/).waitFor();
  await editor.fill(compose('one'));
  await issues.getByText(/no problems found/).waitFor();
});

test('deploying a busybox stack from the UI shows live progress and ends healthy', { timeout: 120_000 }, async () => {
  await page.getByLabel('Stack name').fill('shop');
  await page.getByLabel('Node', { exact: true }).selectOption(NODE);
  const seen = await deployFromForm();
  await screenshot(page, 'stack-deploy-progress-1280');
  assert.ok(seen.includes('queued') || seen.includes('running'), `progress was shown while the job ran (${seen.join(', ')})`);
  assert.ok(seen.includes('succeeded'), `the job succeeded (${seen.join(', ')})`);
  assert.ok((await page.locator('.job-progress .steps li').count()) > 0, "the job's steps are listed");
  const list = (await hub.api('GET', '/api/v1/stacks')).json;
  assert.deepEqual(list, [{ name: 'shop', revision: 1, nodes: [{ node: NODE, revision: 1, status: 'healthy' }] }]);
  const running = await stackContainers();
  assert.equal(running.length, 1);
  assert.equal(running[0]!.State, 'running');
  await page.goto(`${hub.url}/stacks`);
  const row = page.getByRole('row', { name: /shop/ });
  await row.getByText('healthy').waitFor();
  await screenshot(page, 'stacks-1280');
});

test('the stack page shows the history and a diff between revision 1 and 2', { timeout: 120_000 }, async () => {
  await page.goto(`${hub.url}/stacks/shop`);
  await page.getByRole('link', { name: 'Deploy a new revision' }).click();
  const editor = page.getByLabel('Compose file');
  await waitFor(async () => (await editor.inputValue()).includes('release: one'), 10_000, 'the newest revision prefilled');
  await editor.fill(compose('two'));
  const seen = await deployFromForm();
  assert.ok(seen.includes('succeeded'), `revision 2 deployed (${seen.join(', ')})`);
  await page.getByRole('link', { name: 'Go to the stack' }).click();
  const revisions = page.getByRole('table', { name: /Revisions/ }).or(page.locator('table').filter({ has: page.getByText('Roll back to 1') }));
  await revisions.getByRole('button', { name: 'Roll back to 1' }).waitFor();
  const diff = page.getByRole('table', { name: 'Compose file, revision 1 to revision 2' });
  await diff.waitFor();
  const removed = diff.locator('.diff-del');
  const added = diff.locator('.diff-add');
  assert.equal(await removed.count(), 1);
  assert.equal(await added.count(), 1);
  assert.match((await removed.textContent()) ?? '', /release: one/);
  assert.match((await added.textContent()) ?? '', /release: two/);
  await screenshot(page, 'stack-page-diff-1280');
});

test('rollback from the UI asks first, then puts revision 1 back', { timeout: 120_000 }, async () => {
  await page.getByRole('button', { name: 'Roll back to 1' }).click();
  const confirm = page.getByRole('alertdialog');
  await confirm.getByText(/Roll shop back to revision 1/).waitFor();
  await confirm.getByRole('button', { name: 'Roll back to 1' }).click();
  const job = page.locator('.job-progress').first();
  await job.locator('.job-state').getByText('succeeded').waitFor({ timeout: 90_000 });
  const stack = (await hub.api('GET', '/api/v1/stacks/shop')).json;
  assert.equal(stack.revision, 1);
  assert.equal(stack.nodes[0].revision, 1);
  const running = await waitFor(
    async () => {
      const c = await stackContainers();
      return c.length === 1 && c[0]!.State === 'running' ? c : null;
    },
    15_000,
    'revision 1 running',
  );
  assert.equal(running[0]!.Labels.release, 'one');
  await screenshot(page, 'stack-rollback-1280');
  await page.goto(`${hub.url}/jobs?stack=shop`);
  await page.getByRole('row', { name: /rollback/ }).waitFor();
  assert.equal(await page.getByRole('row', { name: /deploy|rollback/ }).count(), 3, 'two deploys and a rollback');
  await page
    .getByRole('row', { name: /rollback/ })
    .getByRole('link', { name: 'rollback' })
    .click();
  await page.getByRole('heading', { name: /rollback shop/ }).waitFor();
  await screenshot(page, 'job-1280');
});

test('node labels edited on the nodes page appear in the API', async () => {
  await page.goto(`${hub.url}/nodes`);
  const card = page.getByRole('article', { name: new RegExp(NODE) });
  await card.getByText('no labels').waitFor();
  await card.getByRole('button', { name: /Edit labels/ }).click();
  const dialog = page.getByRole('dialog', { name: `Labels of ${NODE}` });
  await dialog.getByLabel('Label 1 key').fill('site');
  await dialog.getByLabel('Label 1 value').fill('shop');
  await dialog.getByRole('button', { name: 'Save labels' }).click();
  await dialog.waitFor({ state: 'detached' });
  const nodes = (await hub.api('GET', '/api/v1/nodes')).json as Array<{ name: string; labels: Record<string, string> }>;
  assert.deepEqual(nodes.find((n) => n.name === NODE)?.labels, { site: 'shop' });
  await card.getByText('site=shop').waitFor();
  await screenshot(page, 'nodes-labels-1280');
});

test('phone width: stacks, a stack and the editor fit without sideways scrolling', async () => {
  const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  for (const [path, ready] of [
    ['/stacks', 'healthy'],
    ['/stacks/shop', 'Compare revisions'],
    ['/stacks/deploy', 'Compose file'],
    ['/jobs', 'rollback'],
  ] as const) {
    await small.goto(`${hub.url}${path}`);
    await small.getByText(ready).first().waitFor();
    const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${path}: no sideways scrolling at 390 px (${overflow} px)`);
    await screenshot(small, `${path.slice(1).replace(/\//g, '-')}-390`);
  }
  await phone.close();
});
