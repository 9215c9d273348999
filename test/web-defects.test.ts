/** The defects the UI walk-through found, in a real browser (Debian's chromium) against a real
 * hub, two real agent processes on one private engine (open-01 with the default sections plus volume files, strict-01
 * with a policy file that turns exec and volume files off) and real containers:
 *  1. the containers table fits at 1280, 1024 and 390 px, every row's actions on screen, its
 *     buttons named with the container ("Stop web-1");
 *  2. Tab stays in the terminal (it belongs to the shell) but Esc then Tab leaves it (WCAG 2.1.2);
 *     axe finds no serious or critical issue in light and dark colour schemes (contrast included);
 *  3. an offline node's containers show their last known state, not a green "running";
 *  4. node cards say what each host's policy allows; the terminal and the volume Files button are
 *     refused up front, with the reason, where the policy turns them off. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

/** The default sections, plus the volume file browser (off by default). */
const OPEN_POLICY = {
  sections: Object.fromEntries(
    ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'build', 'volumes', 'networks', 'distribution', 'ingress', 'volumeFiles'].map((s) => [s, true]),
  ),
};
const STRICT_POLICY = {
  sections: { ping: true, version: true, info: true, events: true, system: true, containers: true, images: true, volumes: true, networks: true },
};

let dir: string;
let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let openAgent: DockfleetProcess | undefined;
let strictAgent: DockfleetProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let webId: string;

async function agentFor(node: string, policy: string): Promise<DockfleetProcess> {
  const agent = spawnDockfleet(['agent', '--hub', hub!.url, '--code', await mintCode(hub!, node), '--state', join(dir, `agent-${node}`), '--docker', engine!.dockerHost, '--policy', policy]);
  await agent.waitForLine(new RegExp(`agent ${node} connected`));
  return agent;
}

/** axe-core over the whole page: nothing serious or critical. */
async function assertAccessible(where: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const found = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} — ${v.nodes
          .slice(0, 3)
          .map((n) => `${n.target.join(' ')} ${n.failureSummary ?? ''}`)
          .join('; ')}`,
    );
  assert.deepEqual(found, [], `axe at ${where}`);
  assert.ok(result.passes.length > 10, `axe ran its rules at ${where}`);
}

/** Nothing scrolls sideways, and every row's last action button is inside the visible table. */
async function assertTableFits(where: string): Promise<void> {
  const m = await page.evaluate(() => {
    const wrap = document.querySelector('.table-wrap');
    const box = wrap?.getBoundingClientRect();
    const lastButtons = [...document.querySelectorAll('.containers-table tbody tr')].map((tr) => {
      const buttons = tr.querySelectorAll('.cell-actions button, .cell-actions a');
      const b = buttons[buttons.length - 1]?.getBoundingClientRect();
      return b ? b.right : 0;
    });
    return {
      page: document.documentElement.scrollWidth - window.innerWidth,
      table: wrap ? wrap.scrollWidth - wrap.clientWidth : 0,
      worst: Math.max(0, ...lastButtons) - Math.min(box ? box.right : window.innerWidth, window.innerWidth),
    };
  });
  assert.ok(m.page <= 1, `${where}: the page scrolls sideways by ${m.page} px`);
  assert.ok(m.table <= 1, `${where}: the containers table scrolls sideways by ${m.table} px`);
  assert.ok(m.worst <= 1, `${where}: a row's actions end ${m.worst} px past the visible table`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-webdef-'));
  const strictPolicy = join(dir, 'strict-policy.json');
  await writeFile(strictPolicy, JSON.stringify(STRICT_POLICY));
  [engine] = (await startEngines(1, { prefix: 'webdef' })) as [TestEngine];
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  const openPolicy = join(dir, 'open-policy.json');
  await writeFile(openPolicy, JSON.stringify(OPEN_POLICY));
  openAgent = await agentFor('open-01', openPolicy);
  strictAgent = await agentFor('strict-01', strictPolicy);
  webId = await runContainer(engine, { name: 'web-1' });
  await runContainer(engine, { name: 'worker-with-a-rather-long-name-2', labels: { 'com.example.tier': 'background' } });
  await runContainer(engine, { name: 'stopped-3', start: false });
  await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'site' });

  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, hub, 'Containers'));
});

after(async () => {
  await browser?.close();
  await openAgent?.stop();
  await strictAgent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('containers table: fits at 1280, 1024 and 390 px, row buttons named with their container, axe clean', { timeout: 90_000 }, async () => {
  await page.goto(`${hub!.url}/containers?node=open-01`);
  const stop = page.getByRole('button', { name: 'Stop web-1' });
  await stop.waitFor();
  assert.equal(await page.getByRole('button', { name: 'Remove web-1' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Restart web-1' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Start stopped-3' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Stop', exact: true }).count(), 0, 'no row button is named only "Stop"');
  for (const [width, height] of [
    [1280, 900],
    [1024, 800],
    [390, 844],
  ] as const) {
    await page.setViewportSize({ width, height });
    await stop.waitFor();
    await page.waitForTimeout(100);
    await screenshot(page, `defects-containers-${width}`);
    await assertTableFits(`${width} px`);
    await assertAccessible(`the containers page, ${width} px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('dark colour scheme: badges and primary buttons keep 4.5:1 (axe, nodes and containers)', { timeout: 60_000 }, async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  try {
    await page.goto(`${hub!.url}/containers`);
    await page.getByRole('button', { name: 'Stop web-1' }).first().waitFor();
    await assertAccessible('the containers page, dark');
    await page.goto(`${hub!.url}/nodes`);
    await page.getByRole('button', { name: 'Enroll node' }).first().waitFor();
    const contrast = await page
      .getByRole('button', { name: 'Enroll node' })
      .first()
      .evaluate((el) => {
        const s = getComputedStyle(el);
        return { color: s.color, background: s.backgroundColor };
      });
    assert.notEqual(contrast.color, 'rgb(255, 255, 255)', `dark-mode primary buttons do not put white on the light accent (${JSON.stringify(contrast)})`);
    await assertAccessible('the nodes page, dark');
    await screenshot(page, 'defects-nodes-dark');
  } finally {
    await page.emulateMedia({ colorScheme: 'light' });
  }
});

test('node cards say what each host allows; the strict host refuses terminals and volume files', async () => {
  await page.goto(`${hub!.url}/nodes`);
  const strict = page.getByRole('article', { name: 'strict-01' });
  const open = page.getByRole('article', { name: 'open-01' });
  await strict.getByText('This host allows:').waitFor();
  const strictText = (await strict.textContent()) ?? '';
  assert.match(strictText, /This host allows: containers, images, volumes, networks, engine events\./);
  assert.match(strictText, /Refuses: [^.]*terminals[^.]*volume files/);
  const openText = (await open.textContent()) ?? '';
  assert.match(openText, /This host allows: [^.]*terminals/);
  assert.match(openText, /This host allows: [^.]*volume files/);
  await assertAccessible('the nodes page with policies, 1280 px');
  await page.setViewportSize({ width: 390, height: 844 });
  await strict.getByText('This host allows:').waitFor();
  await assertAccessible('the nodes page with policies, 390 px');
  await screenshot(page, 'defects-nodes-390');
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.goto(`${hub!.url}/containers/strict-01/${webId}/terminal`);
  await page.getByText("This host's policy does not allow terminals").waitFor();
  assert.equal(await page.locator('.xterm').count(), 0, 'no terminal is opened on a host that refuses exec');

  await page.goto(`${hub!.url}/nodes/strict-01/volumes`);
  const refused = page.getByRole('button', { name: /^Files of site: The policy of strict-01 does not allow volume files/ });
  await refused.waitFor();
  assert.equal(await refused.isDisabled(), true);
  await page.goto(`${hub!.url}/nodes/open-01/volumes`);
  await page.getByRole('link', { name: 'Files of site' }).waitFor();
});

test('terminal: Tab goes to the shell, Esc then Tab leaves the terminal', { timeout: 60_000 }, async () => {
  await page.goto(`${hub!.url}/containers/open-01/${webId}/terminal`);
  const term = page.locator('.xterm');
  await term.waitFor();
  await page.getByText(/Connected:/).waitFor();
  await term.click();
  const inTerminal = (): Promise<boolean> => page.evaluate(() => !!document.activeElement?.closest('.term-host'));
  assert.equal(await inTerminal(), true, 'the terminal has focus after a click');
  await page.keyboard.press('Tab');
  assert.equal(await inTerminal(), true, 'a plain Tab belongs to the shell');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Tab');
  assert.equal(await inTerminal(), false, 'Esc then Tab moves focus out of the terminal');
  await term.click();
  await page.keyboard.press('Escape');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await inTerminal(), false, 'Esc then Shift+Tab moves focus back out too');
  assert.match((await page.locator('.term-hint').textContent()) ?? '', /Esc then Tab/);
});

test('an offline node: its containers show their last known state, greyed, never a green running', { timeout: 60_000 }, async () => {
  await page.goto(`${hub!.url}/containers?node=open-01`);
  const row = page.locator('tr', { has: page.getByRole('link', { name: 'web-1', exact: true }) });
  await row.locator('.badge-ok').waitFor();
  await openAgent!.stop();
  await waitFor(async () => (await nodeStatus(hub!, 'open-01')) === 'offline', 15_000, 'open-01 to go offline');
  await row.getByText('last seen running').waitFor();
  assert.equal(await row.locator('.badge-ok').count(), 0, 'no green badge on an offline node');
  assert.match((await row.locator('td[data-label="State"]').textContent()) ?? '', /node offline since /);
  await screenshot(page, 'defects-offline-1280');
  await assertAccessible('the containers page with an offline node, 1280 px');
});
