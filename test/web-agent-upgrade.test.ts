/**
 * Agent self-update in the web UI (issue 16), in Debian's chromium against a real hub started with
 * a release key: two real agents on one private engine (ua1 under its launcher, a `dockfleet agent`
 * process; ua2 in-process, so it cannot switch versions) and a release built from this checkout.
 * Node cards show each agent's version; after a rollout run through the API (ua1 upgraded in wave
 * 1, ua2 failing in wave 2) the nodes page shows the rollout, its waves, each node's state and why
 * ua2 failed; axe finds nothing serious at 1280 and 390 px with the rollout panel open.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { generateReleaseKey } from '../src/lib/release-keys.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { gotoSteadily, launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { CHECKOUT_VERSION, buildRelease, publishRelease } from './support/release-builder.ts';

const TO = '0.0.1-ui';

let work: string;
let engines: TestEngine[] = [];
let hub: TestHub;
let launched: DockfleetProcess;
let inProcess: TestAgent | null = null;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const releaseKey = generateReleaseKey();

async function assertAccessible(where: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`);
  assert.deepEqual(bad, [], `axe at ${where}`);
  assert.ok(result.passes.length > 5, `axe ran its rules at ${where}`);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockfleet-ui-upgrade-'));
  const keyFile = join(work, 'release-key.pem');
  await writeFile(keyFile, releaseKey.privateKeyPem, { mode: 0o600 });
  engines = await startEngines(1, { prefix: 'uiupg', importImage: false });
  process.env.DOCKFLEET_RELEASE_KEY = releaseKey.publicKey;
  hub = await startTestHub();
  delete process.env.DOCKFLEET_RELEASE_KEY;
  launched = spawnDockfleet([
    'agent',
    '--hub',
    hub.url,
    '--code',
    await mintCode(hub, 'ua1'),
    '--state',
    join(work, 'ua1'),
    '--docker',
    engines[0]!.dockerHost,
    '--policy',
    join(work, 'no-policy.json'),
  ]);
  inProcess = await startTestAgent({ hubUrl: hub.url, code: await mintCode(hub, 'ua2'), docker: engines[0]!.dockerHost });
  await publishRelease(hub.dataDir, keyFile, await buildRelease(work, TO));
  await launched.waitForLine(/agent ua1 connected/, 60_000);
  await inProcess.waitConnected(1, 30_000);
  browser = await launchBrowser();
  ({ context, page } = await openAsFirstAdmin(browser, hub, 'Nodes'));
});

after(async () => {
  await browser?.close();
  await launched?.stop();
  await inProcess?.stop();
  await hub?.stop();
  await stopEngines(engines);
  if (work) await rm(work, { recursive: true, force: true });
});

const card = (name: string) => page.getByRole('article', { name });
const agentFact = (name: string) =>
  card(name)
    .locator('dt', { hasText: /^Agent$/ })
    .locator('xpath=following-sibling::dd[1]');
const panel = () => page.getByRole('region', { name: /Agent upgrade/ });

describe('agent upgrades on the nodes page', { timeout: 300_000 }, () => {
  test("each node card shows its agent's version; no rollout panel before the first rollout", async () => {
    await gotoSteadily(page, `${hub.url}/nodes`);
    await card('ua1').waitFor();
    assert.equal((await agentFact('ua1').textContent())?.trim(), CHECKOUT_VERSION);
    assert.equal((await agentFact('ua2').textContent())?.trim(), CHECKOUT_VERSION);
    assert.equal(await panel().count(), 0);
  });

  test('after a rollout run through the API: its waves, each node state, and why a node failed', async () => {
    const started = await hub.api('POST', '/api/v1/agent-upgrades', { to: TO, parallel: 1, nodes: ['ua1', 'ua2'] });
    assert.equal(started.status, 202, JSON.stringify(started.json));
    const done = await waitFor(
      async () => {
        const r = (await hub.api('GET', `/api/v1/agent-upgrades/${started.json.id}`)).json as { state: string; nodes: Array<{ node: string; wave: number; state: string; reason: string | null }> };
        return r.state !== 'running' ? r : null;
      },
      90_000,
      'the rollout to finish',
      250,
    );
    assert.equal(done.state, 'failed');
    const ua2 = done.nodes.find((n) => n.node === 'ua2')!;
    assert.equal(ua2.state, 'failed');
    assert.match(ua2.reason ?? '', /without its launcher/);

    await gotoSteadily(page, `${hub.url}/nodes`);
    await panel().waitFor();
    await page.getByText(TO, { exact: true }).first().waitFor();
    assert.equal((await agentFact('ua1').textContent())?.trim(), TO);
    assert.equal((await agentFact('ua2').textContent())?.trim(), CHECKOUT_VERSION);
    const text = (await panel().textContent()) ?? '';
    assert.match(text, new RegExp(`Agent upgrade to ${TO.replaceAll('.', '\\.')}`));
    assert.match(text, /failed/);
    // Each wave is its own group, naming its node and that node's state.
    const wave1 = panel().getByRole('group', { name: 'Wave 1' });
    const wave2 = panel().getByRole('group', { name: 'Wave 2' });
    assert.match((await wave1.textContent()) ?? '', new RegExp(`ua1.*succeeded.*from ${CHECKOUT_VERSION.replaceAll('.', '\\.')}`));
    assert.match((await wave2.textContent()) ?? '', /ua2.*failed/);
    assert.equal((await wave2.getByText(ua2.reason!).textContent())?.trim(), ua2.reason);
    await screenshot(page, 'agent-upgrade-1280');
    await assertAccessible('nodes page with the rollout panel, 1280 px');

    await page.setViewportSize({ width: 390, height: 844 });
    await panel().waitFor();
    await screenshot(page, 'agent-upgrade-390');
    await assertAccessible('nodes page with the rollout panel, 390 px');
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(sideways <= 0, `the page scrolls sideways by ${sideways} px at 390 px`);
    await context.close();
  });
});
