/** The container Files tab in a real browser against a real hub, two real agents and a real
 * engine: on a node whose policy file turns `archive` on, a folder is listed from the archive
 * stream, a file downloads as itself (pulled out of the tar), and a file uploaded from the browser
 * (a tar built there) lands in the container; on a node with the default policy (archive off)
 * the tab says so, with the reason (and offers no upload). axe at 1280 and 390 px. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const ON = 'files-on';
const OFF = 'files-off';
const SECTIONS = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'build', 'volumes', 'networks', 'distribution', 'ingress'];
let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let dir = '';
const agents: DockfleetProcess[] = [];
let browser: Browser;
let page: Page;
let id = '';

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

async function startAgent(node: string, sections: string[] | null): Promise<void> {
  const policy = join(dir, `${node}.json`);
  if (sections) await writeFile(policy, JSON.stringify({ sections: Object.fromEntries(sections.map((s) => [s, true])) }));
  const agent = spawnDockfleet(['agent', '--hub', hub!.url, '--code', await mintCode(hub!, node), '--state', join(dir, node), '--docker', engine!.dockerHost, '--policy', policy]);
  agents.push(agent);
  await agent.waitForLine(new RegExp(`agent ${node} connected`));
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'webfiles' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-webfiles-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub') });
  await startAgent(ON, [...SECTIONS, 'archive']);
  await startAgent(OFF, null); // no policy file: the defaults, archive off
  id = await runContainer(engine, { name: 'shop', cmd: ['sh', '-c', 'mkdir -p /srv/app/conf && echo "greeting=hello" > /srv/app/conf/app.ini && sleep 3600'] });
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, { url: hub.url, dataDir: join(dir, 'hub') }, 'Nodes', { acceptDownloads: true }));
});

after(async () => {
  await browser?.close();
  for (const a of agents) await a.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('where the policy turns archive on: list a folder, download a file as itself, upload a file into the container', { timeout: 90_000 }, async () => {
  await page.goto(`${hub!.url}/containers/${ON}/${id.slice(0, 12)}`);
  await page.getByRole('link', { name: 'Files', exact: true }).click();
  await page.waitForURL(/\/files$/);
  await page.getByRole('table').waitFor();
  await page.getByRole('link', { name: 'srv', exact: true }).click();
  await page.getByRole('link', { name: 'app', exact: true }).click();
  await page.getByRole('link', { name: 'conf', exact: true }).click();
  await page.getByRole('cell', { name: 'app.ini', exact: true }).waitFor();
  assert.match((await page.getByRole('heading', { name: /Files in/ }).textContent()) ?? '', /\/srv\/app\/conf/);
  await assertAccessible(page, 'container files, 1280 px');
  await screenshot(page, 'container-files-1280');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download app.ini' }).click()]);
  assert.equal(download.suggestedFilename(), 'app.ini');
  assert.equal(await readFile((await download.path())!, 'utf8'), 'greeting=hello\n', 'the file itself, not a tar');

  await page.locator('#container-upload').setInputFiles({ name: 'new.txt', mimeType: 'text/plain', buffer: Buffer.from('uploaded from the browser\n') });
  await page.getByRole('cell', { name: 'new.txt', exact: true }).waitFor();
  const exec = await engineRequest(engine!.socketPath, 'GET', `/containers/${id}/archive?path=${encodeURIComponent('/srv/app/conf/new.txt')}`);
  assert.equal(exec.status, 200, 'the uploaded file exists in the container');
  assert.match(exec.text, /uploaded from the browser/);

  await page.setViewportSize({ width: 390, height: 844 });
  await assertAccessible(page, 'container files, 390 px');
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const wide =
    over <= 1
      ? []
      : await page.evaluate(() =>
          [...document.querySelectorAll('body *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 6)
            .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`),
        );
  assert.ok(over <= 1, `scrolls sideways by ${over} px: ${wide.join(', ')}`);
  await screenshot(page, 'container-files-390');
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('where the policy leaves archive off: the tab says why and offers nothing', { timeout: 30_000 }, async () => {
  await page.goto(`${hub!.url}/containers/${OFF}/${id.slice(0, 12)}/files`);
  const notice = page.getByRole('status').filter({ hasText: 'Files are off on this host' });
  await notice.waitFor();
  assert.match((await notice.textContent()) ?? '', new RegExp(`policy of ${OFF} does not allow container files`));
  assert.equal(await page.getByRole('button', { name: 'Upload file' }).count(), 0);
  await assertAccessible(page, 'container files refused, 1280 px');
  await page.setViewportSize({ width: 390, height: 844 });
  await assertAccessible(page, 'container files refused, 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });
});
