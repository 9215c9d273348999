/**
 * Volume backups in the web UI (issue 14: "progress is live in the UI", "last verified is shown
 * per volume"), in Debian's chromium against a real hub, a real `dockfleet agent` process with a
 * private engine, a host policy whose `backups` section names a path repository, and Debian's
 * restic: a volume backed up from its backups page shows the job's steps and log lines as they
 * arrive until "succeeded"; its snapshot appears in the table; restored from there into a new
 * volume, the new volume holds the same file on the engine; restoring over a volume a running
 * container uses shows the host's refusal; the policy form's values read back from the API; a
 * volume whose last verification failed and whose last good one is two days old (reported by the
 * agent through its real report stream, seeded in its state dir) shows the warning in the
 * Volumes list and on its page; a URL repository's credentials set in the form are kept at the
 * hub by name only (not in any answer, not in clear in its database file) and kept when the
 * policy is saved again without them; axe finds nothing serious at 1280 and 390 px.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { assertAccessible } from './support/axe.ts';
import { launchBrowser, openAsFirstAdmin, screenshot } from './support/browser.ts';
import { engineRequest, runContainer, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'vault-web';
const VOLUME = 'shop-data';
const OLD = 'ledger-old';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');
const DAY = 86_400_000;
const CRED_VOLUME = 'shop-cred';
/** A URL repository nothing listens at: restic says at once that it cannot open it. */
const S3_URL = 's3:http://127.0.0.1:1/dockfleet-webvb';

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
let dir = '';
let stateDir = '';
let policyFile = '';
let content = '';

async function startAgent(code?: string): Promise<DockfleetProcess> {
  const p = spawnDockfleet(['agent', '--hub', hub!.url, ...(code ? ['--code', code] : []), '--state', stateDir, '--docker', engine!.dockerHost, '--policy', policyFile]);
  await p.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
  return p;
}

async function createVolume(name: string): Promise<string> {
  const res = await engineRequest(engine!.socketPath, 'POST', '/volumes/create', { Name: name });
  assert.equal(res.status, 201, res.text);
  return String(res.json.Mountpoint);
}

/** What the agent keeps of its own runs (backup-report.ts), written as it would write it. */
async function seedReport(backup: Record<string, unknown>, verify: Record<string, unknown>): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, 'backup-reports.json'), `${JSON.stringify({ reports: [{ volume: OLD, backup, verify }] })}\n`);
}

async function status(volume: string): Promise<any> {
  const res = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${volume}/backup-status`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

/** Watches one job card until it ends; returns the states it showed on the way and whether any log line showed before the end. */
async function watchJob(card: ReturnType<Page['locator']>): Promise<{ seen: string[]; liveLog: boolean }> {
  const seen = new Set<string>();
  let liveLog = false;
  await card.waitFor();
  await waitFor(
    async () => {
      const text = (await card.locator('.job-state').textContent()) ?? '';
      const states = ['queued', 'running', 'succeeded', 'failed'].filter((s) => text.includes(s));
      for (const s of states) seen.add(s);
      const final = seen.has('succeeded') || seen.has('failed');
      if (!final && (await card.locator('.job-log').count()) > 0) liveLog = true;
      return final;
    },
    120_000,
    'the job to end',
    100,
  );
  return { seen: [...seen], liveLog };
}

describe('volume backups in the web UI', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  before(async () => {
    [engine] = (await startEngines(1, { prefix: 'webvb' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-webvb-'));
    stateDir = join(dir, 'agent');
    const repoDir = join(dir, 'repos');
    await mkdir(repoDir);
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { repository: join(repoDir, 'main'), repositoryPaths: [repoDir] } }));
    // The old volume: verified two days ago, then a verification that failed an hour ago. The hub
    // keeps the newer of each, so they arrive one after the other, each through the report stream.
    const now = Date.now();
    const ok = { at: now - 2 * DAY, ok: true, snapshot: 'aaaaaaaa11111111', files: 3, bytes: 300, durationMs: 900, detail: 'verified' };
    const backup = { at: now - 2 * DAY, ok: true, snapshot: 'aaaaaaaa11111111', bytesAdded: 300, durationMs: 1200, error: null };
    await seedReport(backup, ok);
    hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
    agent = await startAgent(await mintCode(hub, NODE));
    await waitFor(async () => (await status(OLD)).lastVerifiedOkAt !== null, 30_000, 'the first seeded report at the hub', 200);
    await agent.stop();
    const failed = { at: now - 3_600_000, ok: false, snapshot: 'bbbbbbbb22222222', files: 2, bytes: 200, durationMs: 800, detail: 'not verified: 1 difference: books/2026.bin differs in size' };
    await seedReport({ ...backup, at: now - 3_600_000, snapshot: 'bbbbbbbb22222222' }, failed);
    agent = await startAgent();
    await waitFor(async () => (await status(OLD)).lastVerified?.ok === false, 30_000, 'the failed verification at the hub', 200);
    await createVolume(OLD);
    const put = await hub.api('PUT', `/api/v1/nodes/${NODE}/volumes/${OLD}/backup-policy`, { every: '24h' });
    assert.equal(put.status, 200, JSON.stringify(put.json));

    const mount = await createVolume(VOLUME);
    content = randomBytes(2 * 1024 * 1024 + 11).toString('base64');
    await mkdir(join(mount, 'books'));
    await writeFile(join(mount, 'books/2026.txt'), content);
    browser = await launchBrowser();
    ({ context, page } = await openAsFirstAdmin(browser, hub, 'Jobs'));
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close();
    await agent?.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("the Volumes list shows each volume's backups: no policy, or the warning when the last good verification is over a day old", async () => {
    await page.goto(`${hub!.url}/volumes`);
    const fresh = page.getByRole('row').filter({ hasText: VOLUME });
    await fresh.getByText('no policy').waitFor();
    const old = page.getByRole('row').filter({ hasText: OLD });
    await old.getByText('not verified for a day').waitFor();
    assert.match((await old.locator('.backup-summary').textContent()) ?? '', /verified failed/);
    assert.equal(await fresh.getByText('not verified for a day').count(), 0);
    await screenshot(page, 'volume-backups-list-1280');

    await old.getByRole('link', { name: `Backups of ${OLD} on ${NODE}` }).click();
    await page.getByRole('heading', { name: `Backups of ${OLD}` }).waitFor();
    const verified = page.locator('.last-verified');
    await verified.getByText('not verified for a day').waitFor();
    assert.match((await verified.textContent()) ?? '', /failed.*1 difference: books\/2026\.bin differs in size/);
    assert.match((await verified.textContent()) ?? '', /last verified ok 2 days ago/);
    assert.match((await page.locator('.last-backup').textContent()) ?? '', /ok.*snapshot bbbbbbbb/);
  });

  test('Back up now shows the job live until it succeeds, and its snapshot appears in the table', { timeout: 180_000 }, async () => {
    await page.goto(`${hub!.url}/nodes/${NODE}/volumes/${VOLUME}/backups`);
    await page.getByRole('heading', { name: `Backups of ${VOLUME}` }).waitFor();
    await page.locator('.backup-state').getByText('no policy').waitFor();
    // Before the first backup there is no repository yet: the host says so.
    await page
      .locator('.backup-snapshots')
      .getByText(/No snapshots of shop-data|no repository at .* yet/)
      .waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Back up now' }).click();
    const card = page.locator('.backup-now .job-progress');
    const { seen, liveLog } = await watchJob(card);
    await screenshot(page, 'volume-backups-progress-1280');
    assert.ok(seen.includes('succeeded'), `the backup succeeded (${seen.join(', ')}): ${await card.textContent()}`);
    assert.ok(seen.includes('queued') || seen.includes('running'), `progress showed while the job ran (${seen.join(', ')})`);
    assert.ok(liveLog, 'log lines showed before the job ended');
    const steps = await card.locator('.steps li').allTextContents();
    assert.ok(
      steps.some((s) => /back up volume shop-data/.test(s)),
      steps.join(' | '),
    );
    const log = (await card.locator('.job-log').textContent()) ?? '';
    const made = /snapshot ([0-9a-f]{8,64}): (\d+) new files/.exec(log);
    assert.match(log, /progress \d+%: \d+ of \d+ files/, "restic's progress lines reach the log");
    assert.ok(made, `the log names the new snapshot: ${log}`);
    // Escrow custody (the host's default): the first backup made the key, its recovery code shows once.
    assert.match((await page.locator('.recovery-code').textContent()) ?? '', /Recovery code.*[A-Z0-9]{4}/s);
    const row = page.locator('.snapshot-table tbody tr').filter({ hasText: made[1]!.slice(0, 8) });
    await row.waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('.snapshot-table tbody tr').count(), 1);
  });

  test("a snapshot restored from the table into a new volume holds the same file on the engine; over a volume in use the host's refusal shows", { timeout: 240_000 }, async () => {
    const row = page.locator('.snapshot-table tbody tr').first();
    await row.getByRole('button', { name: /^Restore snapshot/ }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('New volume name').fill('shop-data-copy');
    await dialog.getByRole('button', { name: 'Restore' }).click();
    const card = page.locator('.backup-snapshots .job-progress').first();
    const { seen } = await watchJob(card);
    assert.ok(seen.includes('succeeded'), `the restore succeeded (${seen.join(', ')}): ${await card.textContent()}`);
    const copy = await engineRequest(engine!.socketPath, 'GET', '/volumes/shop-data-copy');
    assert.equal(copy.status, 200, copy.text);
    assert.equal(await readFile(join(String(copy.json.Mountpoint), 'books/2026.txt'), 'utf8'), content);

    // Over the volume itself while a running container uses it: the host refuses, in its words.
    await runContainer(engine!, { name: 'shop-user', hostConfig: { Binds: [`${VOLUME}:/data`] } });
    await row.getByRole('button', { name: /^Restore snapshot/ }).click();
    await page.getByRole('dialog').getByLabel(`${VOLUME} itself`, { exact: false }).check();
    await page.getByRole('dialog').getByRole('button', { name: 'Restore' }).click();
    const refused = page.locator('.backup-snapshots .job-progress').first();
    await refused.locator('.job-error').waitFor({ timeout: 120_000 });
    assert.match((await refused.locator('.job-error').textContent()) ?? '', /in use by running container shop-user/);
  });

  test('the policy form sets a policy that the API reads back, and the page shows it', async () => {
    await page.goto(`${hub!.url}/nodes/${NODE}/volumes/${VOLUME}/backups`);
    const form = page.getByRole('form', { name: `Backup policy of ${VOLUME}` });
    await form.waitFor({ timeout: 30_000 }); // a read dropped by Chromium (ERR_NETWORK_CHANGED) is read again within 3 s
    await form.getByLabel('Every', { exact: true }).fill('6h');
    await form.getByLabel('Verify every').fill('12h');
    await form.getByLabel('Keep last').fill('3');
    await form.getByLabel('Keep daily').fill('');
    await form.getByLabel('Keep weekly').fill('2');
    await form.getByRole('button', { name: 'Turn on scheduled backups' }).click();
    await page
      .locator('.backup-policy')
      .getByText(/Every 6h, keep last 3, 2 weekly, verified every 12h/)
      .waitFor();
    const res = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-policy`);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.policy.every, '6h');
    assert.equal(res.json.policy.verifyEvery, '12h');
    assert.deepEqual(res.json.policy.retention, { keepLast: 3, keepWeekly: 2 });
    assert.equal(res.json.policy.repository, null);
    // A bad value comes back in the hub's words and changes nothing.
    await form.getByLabel('Every', { exact: true }).fill('often');
    await form.getByRole('button', { name: 'Save policy' }).click();
    await form
      .locator('.inline-error')
      .getByText(/interval/)
      .waitFor();
    assert.equal((await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-policy`)).json.policy.every, '6h');
  });

  test("a URL repository's credentials set in the form are kept by name only: not in the API's answers, not in clear in the database file", async () => {
    await createVolume(CRED_VOLUME);
    const keyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
    const secret = `webvb-secret-${randomBytes(16).toString('hex')}`;
    await page.goto(`${hub!.url}/nodes/${NODE}/volumes/${CRED_VOLUME}/backups`);
    const form = page.getByRole('form', { name: `Backup policy of ${CRED_VOLUME}` });
    await form.waitFor({ timeout: 30_000 });
    await form.locator('.kept-credentials').getByText('Credentials kept: none').waitFor();
    await form.getByLabel('Policy repository').fill(S3_URL);
    await form.getByRole('button', { name: 'Add a credential' }).click();
    await form.getByRole('button', { name: 'Add a credential' }).click();
    await form.getByLabel('Credential 1 name').fill('AWS_ACCESS_KEY_ID');
    await form.getByLabel('Credential 1 value').fill(keyId);
    assert.equal(await form.getByLabel('Credential 1 value').getAttribute('type'), 'password');
    // A bad name is refused in words before anything is sent.
    await form.getByLabel('Credential 2 name').fill('aws secret');
    await form.getByLabel('Credential 2 value').fill(secret);
    await form.getByRole('button', { name: 'Turn on scheduled backups' }).click();
    await form
      .locator('.inline-error')
      .getByText(/Credential "aws secret": names are capital letters/)
      .waitFor();
    assert.equal((await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${CRED_VOLUME}/backup-policy`)).status, 404);
    await form.getByLabel('Credential 2 name').fill('AWS_SECRET_ACCESS_KEY');
    await form.getByRole('button', { name: 'Turn on scheduled backups' }).click();
    const kept = page.locator('.backup-policy .kept-credentials');
    await kept.getByText('AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY').waitFor();
    assert.equal(await page.getByLabel('Credential 1 value').count(), 0, 'the values are forgotten once sent');
    assert.ok(!(await page.content()).includes(secret), 'the page never shows the value');

    const policy = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${CRED_VOLUME}/backup-policy`);
    assert.equal(policy.status, 200, JSON.stringify(policy.json));
    assert.deepEqual(policy.json.policy.repository, { kind: 'url', url: S3_URL });
    assert.deepEqual(policy.json.secretEnvNames, ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
    const answers = JSON.stringify([policy.json, await status(CRED_VOLUME), (await hub!.api('GET', `/api/v1/jobs?node=${NODE}`)).json]);
    for (const value of [secret, keyId]) assert.ok(!answers.includes(value), "no answer carries a credential's value");

    // The database file and its WAL hold the names (so the search reads the right bytes), never a value in clear.
    const dbFiles = (await readdir(hub!.dataDir)).filter((f) => f.startsWith('dockfleet.db'));
    const bytes = Buffer.concat(await Promise.all(dbFiles.map((f) => readFile(join(hub!.dataDir, f)))));
    assert.ok(bytes.includes('AWS_SECRET_ACCESS_KEY'), `the names are in ${dbFiles.join(', ')}`);
    assert.ok(!bytes.includes(secret) && !bytes.includes(keyId), 'no credential value in clear in the database');

    // Saved again without credential rows: nothing is sent for them, so the hub keeps them.
    await form.getByLabel('Every', { exact: true }).fill('12h');
    await form.getByRole('button', { name: 'Save policy' }).click();
    await page
      .locator('.backup-policy')
      .getByText(/Every 12h/)
      .waitFor();
    const again = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${CRED_VOLUME}/backup-policy`);
    assert.deepEqual(again.json.secretEnvNames, ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);

    // The page with the credential rows open passes axe at both widths.
    await page.getByRole('button', { name: 'Add a credential' }).click();
    await page.getByLabel('Credential 1 name').waitFor();
    await assertAccessible(page, 'volume backups credentials 1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    await screenshot(page, 'volume-backups-credentials-390');
    await assertAccessible(page, 'volume backups credentials 390');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scroll at 390 px (${overflow} px)`);
    await page.setViewportSize({ width: 1280, height: 900 });

    // Removing them is asked for in so many words: the empty row is ignored, `{}` is sent.
    await form.getByLabel('Remove the kept credentials').check();
    await form.getByRole('button', { name: 'Save policy' }).click();
    await kept.getByText('Credentials kept: none').waitFor();
    assert.deepEqual((await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${CRED_VOLUME}/backup-policy`)).json.secretEnvNames, []);
  });

  test('the backups page has no serious accessibility violation at 1280 and 390 px', async () => {
    await page.goto(`${hub!.url}/nodes/${NODE}/volumes/${OLD}/backups`);
    await page.locator('.last-verified').getByText('not verified for a day').waitFor();
    await page.locator('.backup-snapshots').locator('.state, table, p').first().waitFor({ timeout: 60_000 });
    await assertAccessible(page, 'volume backups 1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    await screenshot(page, 'volume-backups-390');
    await assertAccessible(page, 'volume backups 390');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scroll at 390 px (${overflow} px)`);
    await page.setViewportSize({ width: 1280, height: 900 });
  });
});
