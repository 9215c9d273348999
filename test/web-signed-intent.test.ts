/**
 * The web UI signs its container actions (issue 13): the page makes a WebCrypto Ed25519 key on
 * Account → Signing keys, the host's policy file lists that key, and then stop and start from the
 * Containers list work on the signed host, with the browser's key in the host's own audit log.
 * Run a container from the form works there too, signed. A browser without the key sees the
 * actions disabled with the reason, the Run form's submit included; the admin token alone is
 * refused by the host. Real chromium, real hub, real `dockfleet agent` process, private dockerd.
 *
 * DOCKFLEET_TEST_UI_UNSIGNED=1 makes the page forget its key before acting (the stop must then
 * not happen: the proof that the test exercises the signing).
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { gotoSteadily, launchBrowser, openAsFirstAdmin, reportTrouble, screenshot } from './support/browser.ts';
import { BUSYBOX_IMAGE, engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'signed-ui';
const PASSWORD = 'a long enough passphrase';

let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess | undefined;
let browser: Browser;
let page: Page;
let other: BrowserContext | undefined;
let publicKey: string;
let box: string;

async function running(id: string): Promise<boolean> {
  const r = await engineRequest(engine.socketPath, 'GET', `/containers/${id}/json`);
  return r.json?.State?.Running === true;
}

async function hostAudit(): Promise<Array<Record<string, any>>> {
  const text = await readFile(join(dir, 'agent', 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'web-signed' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-web-signed-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, hub, 'Nodes'));
  box = await runContainer(engine, { name: 'box' });
});

after(async () => {
  await other?.close().catch(() => {});
  await browser?.close();
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('Account → Signing keys makes a non-extractable key in the browser and registers its public half; the host is then started with a policy listing it', async () => {
  await gotoSteadily(page, `${hub.url}/account`);
  await page.getByRole('heading', { name: 'Signing keys' }).waitFor();
  await page.getByText('This browser has no signing key.').waitFor();
  await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
  publicKey = ((await page.getByLabel('Public key', { exact: true }).textContent()) ?? '').trim();
  assert.match(publicKey, /^ed25519:[A-Za-z0-9_-]{43}$/);
  const line = ((await page.getByLabel('Policy file line').textContent()) ?? '').trim();
  assert.equal(line, `"signedIntent": { "operators": ["${publicKey}"], "require": "mutations" }`);
  // The key in IndexedDB is a CryptoKey the page itself cannot export.
  const extractable = await page.evaluate(
    () =>
      new Promise<string>((resolve) => {
        const req = indexedDB.open('dockfleet');
        req.onsuccess = () => {
          const get = req.result.transaction('operator-keys').objectStore('operator-keys').get('ada');
          get.onsuccess = () => resolve(`${get.result.keyPair.privateKey.extractable}/${get.result.keyPair.privateKey.algorithm.name}`);
        };
      }),
  );
  assert.equal(extractable, 'false/Ed25519');
  // The hub lists it, as this browser's.
  const fingerprint = ((await page.getByTestId('browser-key-fingerprint').textContent()) ?? '').trim();
  await page
    .getByRole('row', { name: new RegExp(fingerprint) })
    .getByText('this browser')
    .waitFor();
  await screenshot(page, 'signing-keys-1280');

  const sections = Object.fromEntries(['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'archive', 'images', 'volumes', 'networks'].map((s) => [s, true]));
  await writeFile(join(dir, 'policy.json'), JSON.stringify({ sections, signedIntent: { operators: [publicKey], require: 'mutations' } }));
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, NODE), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  await waitFor(async () => (await nodeStatus(hub, NODE)) === 'online', 10_000, 'node online');
});

test("stop and start from the Containers list work on the signed host, and the host's own log names the browser's key", async () => {
  await gotoSteadily(page, `${hub.url}/containers`);
  if (process.env.DOCKFLEET_TEST_UI_UNSIGNED === '1') {
    // Sends the stop with no intent: the host must refuse it.
    await page.evaluate(async (id) => void (await fetch(`/docker/nodes/signed-ui/containers/${id}/stop`, { method: 'POST', headers: { 'X-Dockfleet-UI': '1' } })), box);
  } else {
    await page.getByRole('button', { name: 'Stop box', exact: true }).click();
  }
  await waitFor(async () => !(await running(box)), 15_000, 'box stopped by the signed UI call');
  await page.getByRole('button', { name: 'Start box', exact: true }).click();
  await waitFor(async () => running(box), 15_000, 'box started again by the signed UI call');
  // The host writes its log entry once the answer is out.
  const stop = await waitFor(async () => (await hostAudit()).find((e) => e.op === `POST /containers/${box}/stop`), 5_000, 'the stop in the host log');
  const start = await waitFor(async () => (await hostAudit()).find((e) => e.op === `POST /containers/${box}/start`), 5_000, 'the start in the host log').catch(async (err) =>
    assert.fail(`${(err as Error).message}; the log has ${JSON.stringify((await hostAudit()).map((e) => [e.op, e.result, e.reason]))}`),
  );
  assert.equal(stop?.result, 'ok');
  assert.equal(stop?.key, publicKey);
  assert.equal(start?.result, 'ok');
  assert.equal(start?.key, publicKey);
  assert.equal(stop?.user, 'ada');
});

test("another browser signed in as the same user, without the key, sees the signed host's actions disabled with the reason", async () => {
  other = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  reportTrouble(other);
  const p = await other.newPage();
  p.setDefaultTimeout(15_000);
  // A lazy chunk can be dropped by Chromium when the tests' engines change interfaces: load again.
  for (let attempt = 1; ; attempt++) {
    await gotoSteadily(p, hub.url);
    try {
      await p.getByLabel('Username').waitFor({ timeout: 8_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  await p.getByLabel('Username').fill('ada');
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('link', { name: 'Nodes' }).first().waitFor();
  await gotoSteadily(p, `${hub.url}/containers`);
  await p.getByText(`${NODE} requires signed intent, and this browser has no signing key`).first().waitFor();
  assert.equal(await p.getByRole('button', { name: 'Stop box', exact: true }).count(), 0);
  assert.equal(await p.getByRole('link', { name: 'Signing keys' }).first().getAttribute('href'), '/account#signing-keys');
  await screenshot(p, 'signing-needed-1280');
});

test('Run a container from the form on the signed host: the calls are signed, the container runs on the engine, the host logs the key', { timeout: 60_000 }, async () => {
  for (let attempt = 1; ; attempt++) {
    await gotoSteadily(page, `${hub.url}/containers/run`);
    try {
      await page.getByLabel('Image', { exact: true }).waitFor({ timeout: 8_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  await page.getByLabel('Node', { exact: true }).selectOption(NODE);
  await page.getByLabel('Image', { exact: true }).fill(BUSYBOX_IMAGE);
  await page.getByLabel('Name', { exact: true }).fill('from-form');
  await page.getByLabel('Command', { exact: true }).fill('sleep 600');
  assert.equal(await page.getByText('requires signed intent').count(), 0, 'no signing reason for a browser the host lists');
  await page.getByRole('button', { name: 'Run container' }).click();
  const made = await waitFor(
    async () => {
      const r = await engineRequest(engine.socketPath, 'GET', '/containers/from-form/json');
      return r.json?.State?.Running === true ? r.json : null;
    },
    15_000,
    'from-form running on the engine',
  );
  const entries = await waitFor(
    async () => {
      const log = await hostAudit();
      const create = log.find((e) => e.op === 'POST /containers/create');
      const start = log.find((e) => e.op === `POST /containers/${made.Id}/start`);
      return create && start ? { create, start } : null;
    },
    5_000,
    'the create and start in the host log',
  ).catch(async (err) => assert.fail(`${(err as Error).message}; the log has ${JSON.stringify((await hostAudit()).map((e) => [e.op, e.result]))}`));
  for (const e of [entries.create, entries.start]) {
    assert.equal(e.result, 'ok');
    assert.equal(e.key, publicKey, `${e.op} signed by the browser's key`);
  }
  await page
    .getByRole('heading', { name: /from-form/ })
    .first()
    .waitFor();
});

test('the browser without the key sees Run a container disabled with the reason for the signed node; Run, Change and Images pass axe at 1280', { timeout: 60_000 }, async () => {
  const p = await other!.newPage();
  p.setDefaultTimeout(15_000);
  for (let attempt = 1; ; attempt++) {
    await gotoSteadily(p, `${hub.url}/containers/run`);
    try {
      await p.getByLabel('Image', { exact: true }).waitFor({ timeout: 8_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  await p.getByLabel('Node', { exact: true }).selectOption(NODE);
  await p.getByLabel('Image', { exact: true }).fill(BUSYBOX_IMAGE);
  await p.getByText(`${NODE} requires signed intent, and this browser has no signing key`).waitFor();
  assert.equal(await p.getByRole('button', { name: 'Run container' }).isDisabled(), true, 'Run container is disabled');
  await assertAccessible(p, 'run without a key 1280');
  await screenshot(p, 'run-no-key-1280');
  // Change a container: Recreate disabled with the reason.
  await gotoSteadily(p, `${hub.url}/containers/${NODE}/${box}/edit`);
  await p.getByText(`${NODE} requires signed intent, and this browser has no signing key`).waitFor();
  assert.equal(await p.getByRole('button', { name: 'Recreate' }).isDisabled(), true, 'Recreate is disabled');
  await assertAccessible(p, 'change without a key 1280');
  // Images: readable, but Remove and Prune are disabled with the reason.
  await gotoSteadily(p, `${hub.url}/images`);
  await p.getByText(/Its images can be read here but not changed/).waitFor();
  assert.equal(await p.getByRole('button', { name: 'Prune…' }).isDisabled(), true, 'Prune is disabled');
  const remove = p.getByRole('button', { name: new RegExp(`^Remove ${BUSYBOX_IMAGE.replace(/[.:/]/g, '\\$&')} on ${NODE}: ${NODE} requires signed intent`) });
  assert.equal(await remove.first().isDisabled(), true, "an image's Remove is disabled with the reason");
  await assertAccessible(p, 'images without a key 1280');
  await p.close();
});

test('a stop sent with the admin token and no intent is refused by the host', async () => {
  await waitFor(async () => (await nodeStatus(hub, NODE)) === 'online', 20_000, 'node online');
  const answer = await new Promise<{ status: number; text: string; policy: unknown }>((resolve, reject) => {
    const req = https.request(
      new URL(`/docker/nodes/${NODE}/containers/${box}/stop`, hub.url),
      {
        method: 'POST',
        headers: { authorization: `Bearer ${hub.token}`, 'content-length': '0' },
        ca: hub.caPem,
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, policy: res.headers['x-dockfleet-policy'] }));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(answer.status, 403, answer.text);
  assert.equal(answer.policy, 'refused');
  assert.match(answer.text, /requires signed intent/);
  assert.ok(await running(box), 'the container still runs');
});

test('Account with its signing keys passes axe at 1280 and 390 px', async () => {
  await gotoSteadily(page, `${hub.url}/account`);
  await page.getByLabel('Public key', { exact: true }).waitFor();
  await assertAccessible(page, 'account 1280');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.getByLabel('Public key', { exact: true }).waitFor();
  await assertAccessible(page, 'account 390');
  await screenshot(page, 'signing-keys-390');
  await page.setViewportSize({ width: 1280, height: 900 });
});
