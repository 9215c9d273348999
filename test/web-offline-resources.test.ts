/** Images, volumes and networks of an offline node, in a real browser against a real hub, two
 * real agent processes and two private engines: once one agent is stopped (by its pid), each
 * fleet view still lists that node's items from the hub's last known inventory, marked "last
 * known", with a note saying the node is offline and no error; the rows' Files, Inspect and
 * Remove are disabled and say why in their accessible names, while the online node's rows keep
 * working buttons; axe finds nothing serious at 1280 and 390 px, and nothing scrolls sideways. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { gotoSteadily, launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const UP = 'off-up';
const GONE = 'off-gone';
let engines: TestEngine[] = [];
let hub: TestHub | undefined;
const agents: DockfleetProcess[] = [];
let dir = '';
let browser: Browser | undefined;
let page: Page;

/** Per view: a name the offline node holds, and the same kind of thing on the online node. */
const VIEWS = [
  { kind: 'images', gone: 'busybox', up: 'busybox' },
  { kind: 'volumes', gone: 'gone-data', up: 'up-data' },
  { kind: 'networks', gone: 'gone-net', up: 'up-net' },
] as const;

const row = (name: string, node: string) =>
  page
    .locator('tbody tr')
    .filter({ hasText: name })
    .filter({ has: page.locator('td[data-label="Node"]', { hasText: node }) });

before(async () => {
  engines = await startEngines(2, { prefix: 'weboff' });
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-weboff-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  for (const [i, name] of [UP, GONE].entries()) {
    const agent = spawnDockfleet([
      'agent',
      '--hub',
      hub.url,
      '--code',
      await mintCode(hub, name),
      '--state',
      join(dir, `agent-${name}`),
      '--docker',
      engines[i]!.dockerHost,
      '--policy',
      join(dir, 'no-policy.json'),
    ]);
    agents.push(agent);
    await agent.waitForLine(new RegExp(`agent ${name} connected`));
  }
  await engineRequest(engines[0]!.socketPath, 'POST', '/volumes/create', { Name: 'up-data' });
  await engineRequest(engines[0]!.socketPath, 'POST', '/networks/create', { Name: 'up-net' });
  await engineRequest(engines[1]!.socketPath, 'POST', '/volumes/create', { Name: 'gone-data' });
  await engineRequest(engines[1]!.socketPath, 'POST', '/networks/create', { Name: 'gone-net' });
  // The hub's inventory holds both nodes' lists before the second agent goes.
  await waitFor(
    async () => {
      const vols = await hub!.api('GET', `/api/v1/nodes/${GONE}/volumes`);
      const nets = await hub!.api('GET', `/api/v1/nodes/${GONE}/networks`);
      return vols.json.some((v: { Name: string }) => v.Name === 'gone-data') && nets.json.some((n: { Name: string }) => n.Name === 'gone-net');
    },
    15_000,
    'the hub to know gone-data and gone-net',
  );
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

/** One view with GONE offline: its items listed and marked, no error, actions disabled with the reason. */
async function checkView(view: (typeof VIEWS)[number], width: number): Promise<void> {
  await gotoSteadily(page, `${hub!.url}/${view.kind}`);
  const gone = row(view.gone, GONE);
  await gone.first().waitFor();
  await row(view.up, UP).first().waitFor();
  const where = `${view.kind}, ${width} px`;

  assert.match((await gone.first().locator('td[data-label="Node"]').textContent()) ?? '', /last known/, `${where}: the offline node's row is marked`);
  assert.equal(await row(view.up, UP).first().locator('td[data-label="Node"]', { hasText: 'last known' }).count(), 0, `${where}: the online node's rows are not`);
  const note = page.getByRole('note').filter({ hasText: GONE });
  assert.match((await note.textContent()) ?? '', new RegExp(`${GONE} is offline: its ${view.kind} are shown as it last reported them`));
  assert.equal(await page.getByText(/Could not read/).count(), 0, `${where}: no read error`);
  assert.equal(await page.getByRole('alert').count(), 0, `${where}: no error state`);
  assert.equal(await page.getByRole('button', { name: 'Retry' }).count(), 0, `${where}: nothing to retry`);

  const reason = new RegExp(`${GONE} is offline: this is its last known list`);
  const actions = view.kind === 'volumes' ? ['Files', 'Inspect', 'Remove'] : ['Inspect', 'Remove'];
  for (const action of actions) {
    const button = gone.first().getByRole('button', { name: action, exact: false }).filter({ hasText: action });
    assert.equal(await button.count(), 1, `${where}: ${action} is offered on the offline row`);
    assert.equal(await button.isDisabled(), true, `${where}: ${action} is disabled on the offline row`);
    assert.match((await button.getAttribute('aria-label')) ?? '', reason, `${where}: ${action} says why`);
    assert.match((await button.getAttribute('title')) ?? '', reason);
  }
  const live = row(view.up, UP).first();
  assert.equal(await live.getByRole('button', { name: /^Remove / }).isEnabled(), true, `${where}: the online node's Remove works`);
  assert.equal(await live.getByRole('button', { name: /^Inspect / }).isEnabled(), true);

  await assertAccessible(page, where);
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 1, `${where} scrolls sideways by ${over} px`);
}

test("an offline node's images, volumes and networks show as last known, with actions disabled and why, at 1280 and 390 px", { timeout: 120_000 }, async () => {
  const goneAgent = agents[1]!;
  await goneAgent.stop(); // SIGTERM to that agent's own pid
  await waitFor(async () => (await nodeStatus(hub!, GONE)) === 'offline', 15_000, `${GONE} to be offline`);

  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    for (const view of VIEWS) await checkView(view, width);
    await screenshot(page, `offline-resources-networks-${width}`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // The node filter narrows to the offline node alone: its list, marked, still no error.
  await gotoSteadily(page, `${hub!.url}/volumes?node=${GONE}`);
  await row('gone-data', GONE).waitFor();
  assert.equal(await row('up-data', UP).count(), 0);
  assert.equal(await page.getByText(/Could not read/).count(), 0);
});
