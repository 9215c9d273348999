/** Images, volumes and networks across the fleet, in a real browser against a real hub, two real
 * agent processes and two private engines: each view lists both nodes' items with a node column,
 * and the node filter (kept in the URL) and search narrow it; the create forms make a volume and a
 * network on the engine, and a local volume binding a directory outside the host policy's
 * allow.bindMounts is refused in the daemon's words; the prune dialog lists exactly the items
 * that will go before anything is removed, and afterwards they are gone from the engine; axe
 * finds nothing serious at 1280 and 390 px, and nothing scrolls sideways at 390. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { launchBrowser, openAsFirstAdmin, screenshot, textsOnceListed } from './support/browser.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const A = 'res-a';
const B = 'res-b';
let engines: TestEngine[] = [];
let hub: TestHub | undefined;
const agents: DockfleetProcess[] = [];
let dir = '';
let allowed = '';
let browser: Browser | undefined;
let page: Page;

const sockA = () => engines[0]!.socketPath;
const sockB = () => engines[1]!.socketPath;
const status = async (sock: string, path: string) => (await engineRequest(sock, 'GET', path)).status;
const row = (name: string, node: string) =>
  page
    .locator('tbody tr')
    .filter({ hasText: name })
    .filter({ has: page.locator('td[data-label="Node"]', { hasText: node }) });

before(async () => {
  engines = await startEngines(2, { prefix: 'webres' });
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-webres-'));
  allowed = join(dir, 'allowed');
  await mkdir(join(allowed, 'data'), { recursive: true });
  const policy = join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ allow: { bindMounts: [allowed] } }));
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  for (const [i, name] of [A, B].entries()) {
    const agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, name), '--state', join(dir, `agent-${name}`), '--docker', engines[i]!.dockerHost, '--policy', policy]);
    agents.push(agent);
    await agent.waitForLine(new RegExp(`agent ${name} connected`));
  }
  await engineRequest(sockA(), 'POST', '/volumes/create', { Name: 'alpha-data' });
  await engineRequest(sockB(), 'POST', '/volumes/create', { Name: 'beta-data' });
  await engineRequest(sockA(), 'POST', '/networks/create', { Name: 'alpha-net' });
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, { url: hub.url, dataDir: join(dir, 'hub') }, 'Nodes'));
});

after(async () => {
  await browser?.close();
  for (const a of agents) await a.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the volumes view lists both nodes with a node column; node filter (in the URL) and search narrow it', { timeout: 60_000 }, async () => {
  await page.goto(`${hub!.url}/volumes`);
  await row('alpha-data', A).waitFor();
  await row('beta-data', B).waitFor();
  await page.getByLabel('Node', { exact: true }).selectOption(B);
  await page.waitForURL(/\/volumes\?node=res-b$/);
  await row('alpha-data', A).waitFor({ state: 'detached' });
  assert.equal(await row('beta-data', B).count(), 1);
  await page.getByLabel('Node', { exact: true }).selectOption('');
  await page.getByLabel('Search').fill('alpha');
  await row('beta-data', B).waitFor({ state: 'detached' });
  assert.equal(await row('alpha-data', A).count(), 1);
  await assertAccessible(page, 'volumes, 1280 px');

  await page.goto(`${hub!.url}/nodes/${A}/networks`);
  await page.waitForURL(/\/networks\?node=res-a$/);
  await row('alpha-net', A).waitFor();
  assert.equal(await page.locator('td[data-label="Node"]', { hasText: B }).count(), 0, 'only res-a networks under its filter');
  await page.goto(`${hub!.url}/images`);
  await row('busybox', A).waitFor();
  await row('busybox', B).waitFor();
  await assertAccessible(page, 'images, 1280 px');
  await screenshot(page, 'resources-images-1280');
});

test("create a volume and a network through the forms; a bind outside the policy is refused in the daemon's words", { timeout: 60_000 }, async () => {
  await page.goto(`${hub!.url}/volumes`);
  await page.getByRole('button', { name: 'Create volume…' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Node').selectOption(A);
  await dlg.getByLabel('Name').fill('outside');
  await dlg.getByLabel('Driver options').fill('type=none\no=bind\ndevice=/etc');
  await dlg.getByRole('button', { name: 'Create volume' }).click();
  const refusal = (await dlg.locator('.inline-error').textContent()) ?? '';
  assert.match(refusal, /policy/i);
  assert.match(refusal, /\/etc/);
  assert.equal(await status(sockA(), '/volumes/outside'), 404, 'nothing was made');
  await assertAccessible(page, 'create volume with a refusal');

  await dlg.getByLabel('Name').fill('made-here');
  await dlg.getByLabel('Labels').fill('team=web');
  await dlg.getByLabel('Driver options').fill(`type=none\no=bind\ndevice=${join(allowed, 'data')}`);
  await dlg.getByRole('button', { name: 'Create volume' }).click();
  await dlg.waitFor({ state: 'detached' });
  const vol = (await engineRequest(sockA(), 'GET', '/volumes/made-here')).json;
  assert.equal(vol.Labels.team, 'web');
  assert.equal(vol.Options.device, join(allowed, 'data'));
  await row('made-here', A).waitFor();

  await page.goto(`${hub!.url}/networks`);
  await page.getByRole('button', { name: 'Create network…' }).click();
  const net = page.getByRole('dialog');
  await net.getByLabel('Node').selectOption(B);
  await net.getByLabel('Name').fill('made-net');
  await net.getByLabel('Labels').fill('tier=back');
  await net.getByLabel(/Internal/).check();
  await net.getByRole('button', { name: 'Create network' }).click();
  await net.waitFor({ state: 'detached' });
  const made = (await engineRequest(sockB(), 'GET', '/networks/made-net')).json;
  assert.equal(made.Internal, true);
  assert.equal(made.Labels.tier, 'back');
  await row('made-net', B).waitFor();
});

test('prune lists exactly what will go before removing anything, then it is gone', { timeout: 90_000 }, async () => {
  // A dangling image (a commit without a tag), a stopped container, an unused network on res-a.
  const base = await runContainer(engines[0]!, { cmd: ['sh', '-c', 'echo x > /f'], name: 'writer' });
  await engineRequest(sockA(), 'POST', `/containers/${base}/wait`);
  const dangling = String((await engineRequest(sockA(), 'POST', `/commit?container=${base}`, {})).json.Id);
  await engineRequest(sockA(), 'DELETE', `/containers/${base}`);
  await engineRequest(sockA(), 'POST', '/networks/create', { Name: 'lonely-net' });
  const keep = await runContainer(engines[0]!, { name: 'keeper' }); // running, holds nothing extra
  void keep;

  await page.goto(`${hub!.url}/networks?node=${A}`);
  await row('lonely-net', A).waitFor();
  await page.getByRole('button', { name: 'Prune…' }).click();
  const dlg = page.getByRole('alertdialog');
  const plan = dlg.getByRole('region', { name: `To remove on ${A}` });
  await plan.waitFor();
  const listed = (await plan.locator('li').allTextContents()).map((t) => t.split(' · ')[0]).sort();
  assert.deepEqual(listed, ['alpha-net', 'lonely-net']);
  assert.equal(await status(sockA(), '/networks/lonely-net'), 200, 'nothing removed while the dialog only shows the plan');
  await assertAccessible(page, 'prune dialog with its plan');
  await dlg.getByRole('button', { name: 'Remove 2 networks' }).click();
  await page.getByRole('region', { name: `Removed on ${A}` }).waitFor();
  assert.equal(await status(sockA(), '/networks/lonely-net'), 404);
  assert.equal(await status(sockA(), '/networks/alpha-net'), 404);
  assert.equal(await status(sockA(), '/networks/bridge'), 200);
  assert.equal(await status(sockB(), '/networks/made-net'), 200, 'the other node is untouched');
  await page.getByRole('button', { name: 'Done' }).click();

  await page.goto(`${hub!.url}/images?node=${A}`);
  await page.getByRole('button', { name: 'Prune…' }).click();
  const img = page.getByRole('alertdialog').getByRole('region', { name: `To remove on ${A}` });
  await img.waitFor();
  const imgs = await img.locator('li').allTextContents();
  assert.equal(imgs.length, 1, imgs.join('\n'));
  assert.match(imgs[0]!, new RegExp(dangling.slice(7, 19)));
  await page.getByRole('alertdialog').getByRole('button', { name: 'Remove 1 image' }).click();
  const done = page.getByRole('region', { name: `Removed on ${A}` });
  await done.waitFor();
  assert.match((await done.textContent()) ?? '', /reclaimed/);
  assert.equal(await status(sockA(), `/images/${dangling}/json`), 404);
  assert.equal((await engineRequest(sockA(), 'GET', '/images/dockfleet-test/busybox:latest/json')).status, 200, 'the image in use stays');
  await page.keyboard.press('Escape');

  await page.goto(`${hub!.url}/volumes`);
  await page.getByRole('button', { name: 'Prune…' }).click();
  await page.getByRole('alertdialog').getByLabel('Node').selectOption(B);
  const vols = page.getByRole('alertdialog').getByRole('region', { name: `To remove on ${B}` });
  await vols.waitFor();
  assert.deepEqual(await textsOnceListed(vols.locator('li')), ['beta-data'], 'the plan for res-b names its unused volume');
  await page.getByRole('alertdialog').getByRole('button', { name: 'Remove 1 volume' }).click();
  await page.getByRole('region', { name: `Removed on ${B}` }).waitFor();
  assert.equal(await status(sockB(), '/volumes/beta-data'), 404);
  assert.equal(await status(sockA(), '/volumes/alpha-data'), 200, 'res-a was not pruned');
  await page.keyboard.press('Escape');
});

test('at phone width the fleet views pass axe and do not scroll sideways', { timeout: 60_000 }, async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const kind of ['images', 'volumes', 'networks']) {
    await page.goto(`${hub!.url}/${kind}`);
    await page.locator('tbody tr').first().waitFor();
    await assertAccessible(page, `${kind}, 390 px`);
    const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 1, `${kind} scrolls sideways by ${over} px`);
  }
  await screenshot(page, 'resources-networks-390');
  await page.getByRole('button', { name: 'Prune…' }).click();
  await page
    .getByRole('alertdialog')
    .getByRole('region')
    .first()
    .waitFor()
    .catch(() => {});
  await assertAccessible(page, 'prune dialog, 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });
  await waitFor(() => true, 10, 'noop');
});
