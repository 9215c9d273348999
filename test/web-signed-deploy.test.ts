/**
 * The web UI signs its deploys (issue 13): on a host whose policy lists the browser's WebCrypto
 * key, Stacks → Deploy files the rollout's jobs awaiting a signature, the page signs each
 * (POST /api/v1/jobs/ID/intent) and the host runs them, naming the browser's key in its own audit
 * log; a rollback and a removal from the stack page are signed likewise. A second browser signed
 * in as the same user, without the key, sees Deploy disabled with the reason. A job left awaiting
 * its signature, then declined, reads so in words on Jobs and on the job's page. Real chromium,
 * real hub, real `dockfleet agent` process, private dockerd.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { gotoSteadily, launchBrowser, openAsFirstAdmin, reportTrouble, screenshot } from './support/browser.ts';
import { BUSYBOX_IMAGE, engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'signed-stacks';
const STACK = 'shop';
const PASSWORD = 'a long enough passphrase';

let engine: TestEngine;
let hub: TestHub;
let dir: string;
let agent: DockfleetProcess | undefined;
let browser: Browser;
let page: Page;
let other: BrowserContext | undefined;
let publicKey: string;
/** Every job id this browser attached an intent to, with the hub's answer status. */
const intents = new Map<string, number>();

function compose(release: string): string {
  return [
    'services:',
    '  web:',
    `    image: ${BUSYBOX_IMAGE}`,
    "    command: ['sh', '-c', 'touch /tmp/ready; exec sleep 600']",
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
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${STACK}`] }));
  return (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json;
}

async function hostAudit(): Promise<Array<Record<string, any>>> {
  const text = await readFile(join(dir, 'agent', 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** The host's log entry for job `id` (op `job KIND`, the stack as target; its ref names the job
 * unless the hub gave its own audit ref, then the newest such entry). */
async function hostEntryFor(kind: string, id: string): Promise<Record<string, any>> {
  return waitFor(
    async () => {
      const done = (await hostAudit()).filter((e) => e.op === `job ${kind}` && e.target === STACK);
      return done.find((e) => e.ref === `job ${id}`) ?? done.at(-1);
    },
    10_000,
    `job ${id} in the host log`,
  ).catch(async (err) => assert.fail(`${(err as Error).message}; the log has ${JSON.stringify((await hostAudit()).map((e) => [e.op, e.result, e.reason]))}`));
}

/** Waits for the first job on the page to end; returns its final state text. */
async function jobOutcome(p: Page): Promise<string> {
  const state = p.locator('.job-progress').first().locator('.job-state');
  await state.getByText(/succeeded|failed/).waitFor({ timeout: 90_000 });
  return ((await state.textContent()) ?? '').trim();
}

/** The rollout's answer from the hub, read off the browser's own request. */
async function rolloutAnswer(p: Page, act: () => Promise<void>, method: string, path: RegExp): Promise<{ jobs: string[]; signing?: { jobs: Array<{ id: string }> } }> {
  const answer = p.waitForResponse((r) => r.request().method() === method && path.test(new URL(r.url()).pathname + new URL(r.url()).search), { timeout: 30_000 });
  await act();
  const res = await answer;
  assert.equal(res.status(), 202, await res.text());
  return res.json();
}

before(async () => {
  [engine] = (await startEngines(1, { prefix: 'web-sdeploy' })) as [TestEngine];
  dir = await mkdtemp(join(tmpdir(), 'dockfleet-web-sdeploy-'));
  hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
  browser = await launchBrowser();
  ({ page } = await openAsFirstAdmin(browser, hub, 'Stacks'));
  page.on('response', (res) => {
    const m = /\/api\/v1\/jobs\/([^/]+)\/intent$/.exec(new URL(res.url()).pathname);
    if (m && res.request().method() === 'POST') intents.set(decodeURIComponent(m[1]!), res.status());
  });
  // The browser makes its key; the host's policy file lists it.
  await gotoSteadily(page, `${hub.url}/account`);
  await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
  publicKey = ((await page.getByLabel('Public key', { exact: true }).textContent()) ?? '').trim();
  assert.match(publicKey, /^ed25519:[A-Za-z0-9_-]{43}$/);
  const sections = Object.fromEntries(['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks'].map((s) => [s, true]));
  await writeFile(join(dir, 'policy.json'), JSON.stringify({ sections, signedIntent: { operators: [publicKey], require: 'mutations' } }));
  agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, NODE), '--state', join(dir, 'agent'), '--docker', engine.dockerHost, '--policy', join(dir, 'policy.json')]);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`));
  await waitFor(async () => (await nodeStatus(hub, NODE)) === 'online', 10_000, 'node online');
  // The UI decides to sign from the node's policy summary: wait until the hub has it.
  await waitFor(async () => (await hub.api('GET', '/api/v1/nodes')).json.find((n: any) => n.name === NODE)?.policy?.signedIntent, 10_000, 'policy summary');
});

after(async () => {
  await other?.close().catch(() => {});
  await browser?.close();
  await agent?.stop();
  await hub?.stop();
  if (engine) await stopEngines([engine]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Loads `url` until `ready` shows: a load whose /me or lazy chunk Chromium dropped
 * (ERR_NETWORK_CHANGED while engines change interfaces) is loaded again. */
async function openSteadily(p: Page, url: string, ready: (p: Page) => ReturnType<Page['getByLabel']>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await gotoSteadily(p, url);
    try {
      await ready(p).first().waitFor({ timeout: 8_000 });
      return;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function deployFromForm(release: string, first: boolean): Promise<{ jobs: string[]; signing?: { jobs: Array<{ id: string }> } }> {
  await openSteadily(page, first ? `${hub.url}/stacks/deploy` : `${hub.url}/stacks/deploy?stack=${STACK}`, (p) => p.getByLabel('Compose file'));
  const editor = page.getByLabel('Compose file');
  if (first) await page.getByLabel('Stack name').fill(STACK);
  else await waitFor(async () => (await editor.inputValue()).includes('release:'), 10_000, 'the newest revision prefilled');
  await editor.fill(compose(release));
  await page.getByLabel('Node', { exact: true }).selectOption(NODE);
  await page.getByLabel('Stable window (s)').fill('1');
  await page.getByLabel('Gate deadline (s)').fill('60');
  return rolloutAnswer(page, () => page.getByRole('button', { name: 'Deploy', exact: true }).click(), 'POST', new RegExp(`^/api/v1/stacks/${STACK}/deploy$`));
}

test("a deploy from Stacks → Deploy to the signed host: its job is filed awaiting a signature, the browser signs it, the host runs it and logs the browser's key", { timeout: 150_000 }, async () => {
  const started = await deployFromForm('one', true);
  // Filed for signing: the hub's answer carries the proposal, every job in it.
  assert.equal(started.jobs.length, 1);
  assert.deepEqual(
    started.signing?.jobs.map((j) => j.id),
    started.jobs,
    "the deploy was filed awaiting the browser's signature",
  );
  const id = started.jobs[0]!;
  assert.equal(await jobOutcome(page), 'succeeded');
  assert.equal(intents.get(id), 200, "the browser posted the job's intent and the hub took it");
  const running = await stackContainers();
  assert.equal(running.length, 1);
  assert.equal(running[0]!.State, 'running');
  assert.equal(running[0]!.Labels.release, 'one');
  const entry = await hostEntryFor('deploy', id);
  assert.equal(entry.result, 'ok');
  assert.equal(entry.key, publicKey, "the host log names the browser's key");
  assert.equal(entry.user, 'ada', 'and the user the signer named in its intent (the hub names none for a job)');
  await screenshot(page, 'signed-deploy-1280');
});

test('a rollback and a removal from the stack page are signed by the browser too', { timeout: 240_000 }, async () => {
  const second = await deployFromForm('two', false);
  assert.equal(await jobOutcome(page), 'succeeded');
  assert.equal(intents.get(second.jobs[0]!), 200);
  assert.equal((await stackContainers())[0]?.Labels.release, 'two');

  await openSteadily(page, `${hub.url}/stacks/${STACK}`, (p) => p.getByRole('button', { name: 'Roll back to 1' }));
  await page.getByRole('button', { name: 'Roll back to 1' }).click();
  const rollback = await rolloutAnswer(page, () => page.getByRole('alertdialog').getByRole('button', { name: 'Roll back to 1' }).click(), 'POST', new RegExp(`^/api/v1/stacks/${STACK}/rollback$`));
  assert.deepEqual(
    rollback.signing?.jobs.map((j) => j.id),
    rollback.jobs,
    'the rollback was filed awaiting the signature',
  );
  assert.equal(await jobOutcome(page), 'succeeded');
  assert.equal(intents.get(rollback.jobs[0]!), 200);
  const back = await waitFor(
    async () => {
      const c = await stackContainers();
      return c.length === 1 && c[0]!.State === 'running' ? c : null;
    },
    15_000,
    'revision 1 running',
  );
  assert.equal(back[0]!.Labels.release, 'one', 'revision 1 is back on the engine');
  assert.equal((await hostEntryFor('rollback', rollback.jobs[0]!)).key, publicKey);

  await page.getByRole('button', { name: 'Hide' }).click();
  await page.getByRole('button', { name: 'Remove', exact: true }).click();
  const confirm = page.getByRole('alertdialog');
  await confirm.getByLabel(`Type ${STACK} to confirm`).fill(STACK);
  const removal = await rolloutAnswer(page, () => confirm.getByRole('button', { name: 'Remove stack' }).click(), 'DELETE', new RegExp(`^/api/v1/stacks/${STACK}\\?sign=true$`));
  assert.deepEqual(
    removal.signing?.jobs.map((j) => j.id),
    removal.jobs,
    'the removal was filed awaiting the signature',
  );
  assert.equal(await jobOutcome(page), 'succeeded');
  assert.equal(intents.get(removal.jobs[0]!), 200);
  await waitFor(async () => (await stackContainers()).length === 0, 15_000, "the stack's container gone from the engine");
  assert.equal((await hostEntryFor('remove', removal.jobs[0]!)).key, publicKey);
});

test('another browser signed in as the same user, without the key, sees Deploy disabled with the reason', { timeout: 60_000 }, async () => {
  other = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  reportTrouble(other);
  const p = await other.newPage();
  p.setDefaultTimeout(15_000);
  await openSteadily(p, hub.url, (q) => q.getByLabel('Username'));
  await p.getByLabel('Username').fill('ada');
  await p.getByLabel('Password').fill(PASSWORD);
  await p.getByRole('button', { name: 'Sign in' }).click();
  await p.getByRole('link', { name: 'Stacks' }).first().waitFor();
  await openSteadily(p, `${hub.url}/stacks/deploy`, (q) => q.getByLabel('Compose file'));
  await p.getByLabel('Stack name').fill('nokey');
  await p.getByLabel('Compose file').fill(compose('nokey'));
  await p.getByLabel('Node', { exact: true }).selectOption(NODE);
  await p.getByText(`${NODE} requires signed intent, and this browser has no signing key`).waitFor();
  assert.equal(await p.getByRole('button', { name: 'Deploy', exact: true }).isDisabled(), true, 'Deploy is disabled');
  await screenshot(p, 'signed-deploy-no-key-1280');
  await assertAccessible(p, 'deploy without a key 1280');
  const jobs = (await hub.api('GET', '/api/v1/jobs?stack=nokey')).json as unknown[];
  assert.deepEqual(jobs, [], 'nothing was filed');
});

test('a job awaiting its signature reads "awaiting signature" on Jobs and on its page; declined, it says so', { timeout: 60_000 }, async () => {
  // Filed for signing with the admin token, and never signed by anyone.
  const filed = await hub.api('POST', '/api/v1/stacks/held/deploy', { compose: compose('held'), target: { node: NODE }, sign: true });
  assert.equal(filed.status, 202, JSON.stringify(filed.json));
  const id = filed.json.jobs[0] as string;
  await openSteadily(page, `${hub.url}/jobs?stack=held`, (p) => p.getByRole('row', { name: new RegExp(id) }));
  const row = page.getByRole('row', { name: new RegExp(id) });
  await row.getByText('awaiting signature', { exact: true }).waitFor();
  await row.getByText(`sent to ${NODE} once its operator signs it`).waitFor();
  await assertAccessible(page, 'jobs awaiting a signature 1280');
  await screenshot(page, 'jobs-awaiting-signature-1280');
  await openSteadily(page, `${hub.url}/jobs/${id}`, (p) => p.locator('.job-state'));
  await page.locator('.job-state').getByText('awaiting signature', { exact: true }).waitFor();
  await page.getByText("waiting for its operator's signature").waitFor();
  await assertAccessible(page, 'job awaiting a signature 1280');

  const declined = await hub.api('POST', `/api/v1/jobs/${id}/decline`, { reason: 'not what I asked for' });
  assert.equal(declined.status, 200, JSON.stringify(declined.json));
  await page.locator('.job-state').getByText('signature declined').waitFor();
  await openSteadily(page, `${hub.url}/jobs?stack=held`, (p) => p.getByRole('row', { name: new RegExp(id) }));
  await page
    .getByRole('row', { name: new RegExp(id) })
    .getByText('signature declined')
    .waitFor();
  await assertAccessible(page, 'jobs with a declined signature 1280');
  assert.equal((await hub.api('GET', `/api/v1/jobs/${id}`)).json.errorCode, 'signature_declined');
});

test('the stack page and the deploy form on the signed host pass axe at 1280 px', async () => {
  await openSteadily(page, `${hub.url}/stacks/${STACK}`, (p) => p.getByRole('heading', { name: 'Revisions' }));
  await assertAccessible(page, 'stack 1280');
  await openSteadily(page, `${hub.url}/stacks/deploy?stack=${STACK}`, (p) => p.getByLabel('Compose file'));
  assert.equal(await page.getByText('requires signed intent').count(), 0, 'no signing reason for a browser that can sign');
  await assertAccessible(page, 'deploy 1280');
});
