/** The web UI in a real browser (Debian's chromium) against a real hub, agent and engine:
 * setup, enrolling a node and seeing it come online, containers live, logs, a terminal, the
 * volume file browser (with escape attempts), sign-out and sign-in, at desktop and phone width. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { engineRequest, runContainer, startEngines, stopEngines, waitContainer, type TestEngine } from './support/engines.ts';
import { startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { startTestAgent, type TestAgent } from './support/agent-fixture.ts';
import { launchBrowser, reportTrouble, screenshot } from './support/browser.ts';

let engine: TestEngine;
let hub: TestHub;
let agent: TestAgent | null = null;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let work: string;
const USER = 'ada';
const PASSWORD = 'a long enough passphrase';

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'ui' })) as [TestEngine];
  work = await mkdtemp(join(tmpdir(), 'dockfleet-ui-'));
  hub = await startTestHub();
  browser = await launchBrowser();
  // The hub's certificate comes from its private CA, which this throwaway profile does not know.
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  reportTrouble(context);
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await hub.stop();
  await stopEngines([engine]);
  await rm(work, { recursive: true, force: true });
});

test("first visit offers setup, which asks for the hub machine's setup code; the new admin lands on the fleet", async () => {
  await page.goto(hub.url);
  await page.getByLabel('Username').waitFor();
  await screenshot(page, 'setup-1280');
  await page.getByLabel('Setup code').fill('WRNG-WRNG-WRNG-WRNG-WRNG');
  await page.getByLabel('Username').fill(USER);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page
    .getByText(/setup code/i)
    .and(page.getByRole('alert'))
    .waitFor();
  const code = (await readFile(join(hub.dataDir, 'setup.code'), 'utf8')).trim();
  await page.getByLabel('Setup code').fill(code);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Nodes' }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'df_session');
  assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict');
});

test('enroll a node from the UI: the command is shown, and the node comes online live', async () => {
  await page.goto(`${hub.url}/nodes`);
  await page.getByRole('button', { name: 'Enroll node' }).first().click();
  await page.getByLabel('Node name').fill('shop-01');
  await page.getByRole('button', { name: 'Create enrollment code' }).click();
  const command = (await page.getByLabel('Agent command').textContent()) ?? '';
  assert.match(command, new RegExp(`^dockfleet agent --hub ${hub.url.replace(/[.]/g, '\\.')} --code DFE1-[0-9a-f]{64}-[0-9a-f]{32}$`));
  await screenshot(page, 'enroll-1280');
  await page.getByRole('button', { name: 'Done' }).click();
  const code = command.split('--code ')[1]!;
  const policy = join(work, 'policy.json');
  const on = ['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks', 'volumeFiles'];
  await writeFile(policy, JSON.stringify({ sections: Object.fromEntries(on.map((s) => [s, true])) }));
  agent = await startTestAgent({ hubUrl: hub.url, code, docker: engine.dockerHost, policy });
  // No reload: the page updates from the live stream.
  await page
    .getByRole('article', { name: /shop-01/ })
    .getByText('online')
    .waitFor({ timeout: 10_000 });
  await screenshot(page, 'nodes-1280');
});

test('a container started on the host shows within a second; stop and start it from the UI', async () => {
  await page.goto(`${hub.url}/containers`);
  await page.getByRole('search', { name: 'Filter containers' }).waitFor();
  const id = await runContainer(engine, { name: 'web-1', cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo "tick $i"; echo "warn $i" >&2; sleep 0.2; done'] });
  const started = Date.now();
  const row = page.getByRole('row', { name: /web-1/ });
  await row.waitFor({ timeout: 5_000 });
  assert.ok(Date.now() - started < 2_000, `shown after ${Date.now() - started} ms`);
  await row.getByText('running').waitFor();
  await screenshot(page, 'containers-1280');
  await row.getByRole('button', { name: 'Stop' }).click();
  await row.getByText('exited').waitFor({ timeout: 20_000 });
  const inspected = await engineRequest(engine.socketPath, 'GET', `/containers/${id}/json`);
  assert.equal(inspected.json.State.Running, false);
  await row.getByRole('button', { name: 'Start' }).click();
  await row.getByText('running').waitFor({ timeout: 10_000 });
});

test('logs follow live, with stderr told apart', async () => {
  const { json } = await engineRequest(engine.socketPath, 'GET', '/containers/web-1/json');
  await page.goto(`${hub.url}/containers/shop-01/${json.Id}/logs`);
  const output = page.getByLabel('Log output');
  await output
    .getByText(/tick \d+/)
    .first()
    .waitFor();
  const before = (await output.textContent())?.match(/tick (\d+)/g)?.length ?? 0;
  await page.waitForTimeout(1_500);
  const later = (await output.textContent())?.match(/tick (\d+)/g)?.length ?? 0;
  assert.ok(later > before, `log lines keep arriving (${before} → ${later})`);
  const stderrClass = await output
    .getByText(/warn \d+/)
    .first()
    .evaluate((el) => el.closest('.log-row')?.className ?? '');
  const stdoutClass = await output
    .getByText(/tick \d+/)
    .first()
    .evaluate((el) => el.closest('.log-row')?.className ?? '');
  assert.notEqual(stderrClass, stdoutClass, 'stderr lines look different');
  await screenshot(page, 'logs-1280');
});

test('a terminal in the container: type a command, read its output', async () => {
  const { json } = await engineRequest(engine.socketPath, 'GET', '/containers/web-1/json');
  await page.goto(`${hub.url}/containers/shop-01/${json.Id}/terminal`);
  const term = page.locator('.xterm');
  await term.waitFor();
  await page.waitForTimeout(500);
  await term.click();
  await page.keyboard.type('echo hi-$((6*7))');
  await page.keyboard.press('Enter');
  await waitFor(async () => ((await page.locator('.xterm-rows').textContent()) ?? '').includes('hi-42'), 10_000, 'terminal output');
  // xterm's own stylesheet is in force: its input textarea is hidden, not a box under the screen.
  assert.equal(await page.locator('.xterm-helper-textarea').evaluate((el) => getComputedStyle(el).opacity), '0', "xterm's stylesheet is loaded");
  await screenshot(page, 'terminal-1280');
});

test('volume files: upload, list, download; escape attempts are refused', async () => {
  await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'site' });
  const seed = await runContainer(engine, { cmd: ['sh', '-c', 'echo hi > /v/index.html && ln -s /etc /v/etc-link'], hostConfig: { Binds: ['site:/v'] } });
  await waitContainer(engine, seed);
  await page.goto(`${hub.url}/nodes/shop-01/volumes/site/files`);
  await page.getByText('index.html').waitFor();
  const upload = join(work, 'notes.txt');
  await writeFile(upload, 'uploaded from the browser\n');
  await page.locator('input[type=file]').setInputFiles(upload);
  await page.getByRole('link', { name: 'notes.txt' }).or(page.getByText('notes.txt')).first().waitFor();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page
      .getByRole('row', { name: /notes\.txt/ })
      .getByRole('link', { name: 'Download' })
      .click(),
  ]);
  assert.equal(await readFile((await download.path())!, 'utf8'), 'uploaded from the browser\n');
  await screenshot(page, 'files-1280');
  // Escapes through the UI's own URL: the UI keeps dot-dot inside the volume and reads
  // absolute paths relative to it; symlinks out are refused with the agent's reason. The
  // host's /etc is never listed.
  const cases: Array<[string, RegExp]> = [
    ['../..', /index\.html/],
    ['..%2F..%2Fetc', /no such file or directory/],
    ['/etc', /no such file or directory/],
    ['etc-link', /path escapes the volume/],
    ['etc-link/passwd', /path escapes the volume/],
  ];
  for (const [path, shown] of cases) {
    await page.goto(`${hub.url}/nodes/shop-01/volumes/site/files?path=${path}`);
    await page.locator('main').getByText(shown).first().waitFor();
    const main = await page.locator('main').innerText();
    assert.doesNotMatch(main, /os-release|shadow|root:x:0:0/, `${path} showed host files`);
  }
  for (const q of ['path=..', 'path=..%2F..%2Fetc%2Fpasswd&download=1', 'path=etc-link%2Fpasswd&download=1', 'path=%2Fetc%2Fpasswd&download=1']) {
    const res = await page.request.get(`${hub.url}/api/v1/nodes/shop-01/volumes/site/files?${q}`);
    assert.ok(res.status() === 403 || res.status() === 400, `${q}: ${res.status()}`);
    assert.doesNotMatch(await res.text(), /root:x:0:0/);
  }
});

test('images, volumes and networks of a node: list, inspect, remove with confirmation, prune', async () => {
  await page.goto(`${hub.url}/nodes/shop-01/images`);
  const image = page.getByRole('row', { name: /dockfleet-test\/busybox/ });
  await image.waitFor();
  await image.getByRole('button', { name: 'Inspect' }).click();
  const inspect = page.getByRole('dialog');
  await inspect
    .getByText(/^sha256:[0-9a-f]{64}$/)
    .first()
    .waitFor();
  await screenshot(page, 'images-inspect-1280');
  await inspect.getByRole('button', { name: 'Close' }).first().click();

  // A network made on the host shows up; removing it asks first, then it is gone from the engine.
  await engineRequest(engine.socketPath, 'POST', '/networks/create', { Name: 'ui-net' });
  await page.goto(`${hub.url}/nodes/shop-01/networks`);
  const net = page.getByRole('row', { name: /ui-net/ });
  await net.getByRole('button', { name: 'Remove' }).click();
  // A confirmation first (an alert dialog), then the removal.
  await page.getByRole('alertdialog').getByRole('button', { name: 'Remove' }).click();
  await net.waitFor({ state: 'detached' });
  assert.equal((await engineRequest(engine.socketPath, 'GET', '/networks/ui-net')).status, 404);

  // An unused volume beside the one in use: prune must remove it and only it.
  await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: 'ui-spare' });
  await page.goto(`${hub.url}/nodes/shop-01/volumes`);
  await page.getByRole('row', { name: /ui-spare/ }).waitFor();
  // The prune dialog lists what it would remove before anything goes.
  await page.getByRole('button', { name: 'Prune…' }).click();
  const prune = page.getByRole('alertdialog');
  const plan = prune.getByRole('region', { name: 'To remove on shop-01' });
  await plan.waitFor();
  assert.deepEqual(await plan.locator('li').allTextContents(), ['ui-spare']);
  await prune.getByRole('button', { name: 'Remove 1 volume' }).click();
  await page.getByRole('region', { name: 'Removed on shop-01' }).waitFor();
  assert.equal((await engineRequest(engine.socketPath, 'GET', '/volumes/ui-spare')).status, 404);
  assert.equal((await engineRequest(engine.socketPath, 'GET', '/volumes/site')).status, 200, 'the volume in use stays');
  await screenshot(page, 'volumes-prune-1280');
  await page.keyboard.press('Escape');
});

test('phone width: the fleet is readable and the menu works; sign out and back in', async () => {
  const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(`${hub.url}/containers`);
  await small.getByText('web-1').first().waitFor();
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `no sideways scrolling at 390 px (${overflow} px)`);
  await screenshot(small, 'containers-390');
  await small.goto(`${hub.url}/nodes`);
  await small.getByRole('article', { name: /shop-01/ }).waitFor();
  await screenshot(small, 'nodes-390');
  await small.getByRole('button', { name: 'Menu' }).click();
  await small.getByRole('button', { name: 'Sign out' }).click();
  await small.getByLabel('Username').waitFor();
  await screenshot(small, 'sign-in-390');
  await small.getByLabel('Username').fill(USER);
  await small.getByLabel('Password').fill(PASSWORD);
  await small.getByRole('button', { name: 'Sign in' }).click();
  await small.getByRole('button', { name: 'Menu' }).waitFor();
  await small.getByRole('button', { name: 'Menu' }).click();
  await small.getByRole('link', { name: 'Containers' }).first().waitFor();
  await phone.close();
});
