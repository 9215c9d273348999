/** Running and changing containers from the web UI, in a real browser against a real hub, agent
 * and engine: the run form creates through the Docker endpoint and a host-policy refusal (a bind
 * of /) shows the daemon's words; a container made from the form carries its settings; changing
 * its env and recreating it keeps its named volume's data; axe finds nothing serious at 1280 and
 * 390 px. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { BUSYBOX_IMAGE, containerLogs, engineRequest, runContainer, waitContainer } from './support/engines.ts';
import { waitFor } from './support/hub-fixture.ts';
import { startNodeRig, stopNodeRig, type NodeRig } from './support/node-rig.ts';

const NODE = 'run-01';
let rig: Partial<NodeRig> = {};
let browser: Browser;
let page: Page;

const sock = () => rig.engine!.socketPath;
const inspect = async (name: string) => (await engineRequest(sock(), 'GET', `/containers/${name}/json`)).json;

before(async () => {
  rig = await startNodeRig('webrun', NODE);
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, { url: rig.hub!.url, dataDir: rig.hubDir! }, 'Nodes'));
});

after(async () => {
  await browser?.close();
  await stopNodeRig(rig);
});

test("the run form: a bind of / is refused in the host policy's own words; a good spec runs with its settings", { timeout: 60_000 }, async () => {
  await page.goto(`${rig.hub!.url}/containers/run`);
  await page.getByRole('heading', { name: 'Run a container' }).waitFor();
  await page.getByLabel('Node').selectOption(NODE);
  await page.getByLabel('Image', { exact: true }).fill(BUSYBOX_IMAGE);
  await page.getByLabel('Name', { exact: true }).fill('web-1');
  await page.getByLabel('Command').fill('sh -c "echo kept > /data/f; sleep 3600"');
  await page.getByLabel('Volumes and binds').fill('/:/host');
  await page.getByRole('button', { name: 'Run container' }).click();
  const refusal = (await page.locator('.inline-error').textContent({ timeout: 15_000 })) ?? '';
  assert.match(refusal, /policy/i);
  assert.match(refusal, /\//);
  assert.equal((await engineRequest(sock(), 'GET', '/containers/web-1/json')).status, 404);
  await assertAccessible(page, 'run form with a refusal, 1280 px');
  await screenshot(page, 'run-refused-1280');

  await page.getByLabel('Volumes and binds').fill('appdata:/data');
  await page.getByLabel('Environment').fill('MODE=one');
  await page.getByLabel('Labels').fill('team=web');
  await page.getByLabel('Memory (MB)').fill('64');
  await page.getByLabel('Restart policy').selectOption('unless-stopped');
  await page.getByRole('button', { name: 'Run container' }).click();
  await page.waitForURL(/\/containers\/run-01\/[0-9a-f]{12}$/);
  const info = await inspect('web-1');
  assert.equal(info.State.Running, true);
  assert.ok(info.Config.Env.includes('MODE=one'));
  assert.equal(info.Config.Labels.team, 'web');
  assert.equal(info.HostConfig.Memory, 64 * 1024 * 1024);
  assert.equal(info.HostConfig.RestartPolicy.Name, 'unless-stopped');
  assert.deepEqual(info.HostConfig.Binds, ['appdata:/data']);
});

test('change the env and recreate: a new container, the same volume, and the file written before is still there', { timeout: 90_000 }, async () => {
  const before = await inspect('web-1');
  await page.goto(`${rig.hub!.url}/containers/${NODE}/${before.Id.slice(0, 12)}/edit`);
  await page.getByLabel('Environment').waitFor();
  assert.equal(await page.getByLabel('Environment').inputValue(), before.Config.Env.join('\n'));
  await page.getByLabel('Environment').fill(before.Config.Env.map((e: string) => (e === 'MODE=one' ? 'MODE=two' : e)).join('\n'));
  await assertAccessible(page, 'edit form, 1280 px');
  await page.getByRole('button', { name: 'Recreate' }).click();
  // Stopping `sleep` under sh waits out the engine's 10 s grace, so allow for it; a refusal fails at once with its words.
  const outcome = await Promise.race([
    page.waitForURL((u) => /\/containers\/run-01\/[0-9a-f]{12}$/.test(u.pathname) && !u.pathname.endsWith(before.Id.slice(0, 12)), { timeout: 40_000 }).then(() => null),
    page
      .locator('.inline-error')
      .waitFor({ timeout: 40_000 })
      .then(async () => (await page.locator('.inline-error').textContent()) ?? 'an error with no text'),
  ]);
  assert.equal(outcome, null, `the recreate was refused: ${outcome}`);
  const after = await waitFor(
    async () => {
      const i = await inspect('web-1');
      return i?.Id && i.Id !== before.Id && i.State.Running ? i : null;
    },
    15_000,
    'the recreated container',
  );
  assert.ok(after.Config.Env.includes('MODE=two'));
  assert.equal(after.Config.Labels.team, 'web');
  assert.equal((await engineRequest(sock(), 'GET', `/containers/${before.Id}/json`)).status, 404, 'the old container is gone');
  // The volume's data survived: read it from a throwaway container.
  const reader = await runContainer(rig.engine!, { cmd: ['cat', '/data/f'], hostConfig: { Binds: ['appdata:/data'] } });
  await waitContainer(rig.engine!, reader);
  assert.match(await containerLogs(rig.engine!, reader), /kept/);
});

test('the run form at phone width passes axe and does not scroll sideways', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${rig.hub!.url}/containers/run`);
  await page.getByRole('heading', { name: 'Run a container' }).waitFor();
  await assertAccessible(page, 'run form, 390 px');
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 1, `scrolls sideways by ${over} px`);
  await screenshot(page, 'run-390');
  await page.setViewportSize({ width: 1280, height: 900 });
});
