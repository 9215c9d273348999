/**
 * Volume jobs on a host that requires signed intent (issue 14 × issue 13): with an operator key,
 * `dockfleet volume backup` and `restore` file their jobs for signing, sign them and the host runs
 * them, naming the key in its own audit log; without a key the host refuses them and the CLI says
 * why; a hub that changes the job between filing and signing gets no signature and the CLI names
 * the field; a policy set by the CLI reaches the agent's state file only when signed; the web UI's
 * Back up now signs with the browser's key. Real hub (in this process), real `dockfleet agent` and
 * CLI processes, a private dockerd, Debian's restic on a path repository, chromium.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { Browser, Page } from 'playwright-core';
import { gotoSteadily, launchBrowser, openAsFirstAdmin } from './support/browser.ts';
import { engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, nodeStatus, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'signed-vault';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let work = '';
let home = '';
let cliKey = '';
let browserKey = '';

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: hub!.url, DOCKFLEET_TOKEN: hub!.token, DOCKFLEET_CA: join(hub!.dataDir, 'pki', 'ca.pem'), DOCKFLEET_HOME: home, ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

const lastLine = (text: string): string => text.trimEnd().split('\n').at(-1) ?? '';

async function hostAudit(): Promise<Array<Record<string, any>>> {
  const text = await readFile(join(work, 'agent', 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);
}

async function hostEntry(kind: string, jobId: string): Promise<Record<string, any>> {
  return waitFor(
    async () =>
      (await hostAudit()).find((e) => e.op === `job ${kind}` && e.result === 'ok' && String(e.ref ?? '').includes(jobId)) ??
      (await hostAudit()).filter((e) => e.op === `job ${kind}` && e.result === 'ok').at(-1),
    10_000,
    `job ${jobId} in the host log`,
  );
}

async function createVolume(name: string, content: string): Promise<void> {
  const res = await engineRequest(engine!.socketPath, 'POST', '/volumes/create', { Name: name });
  assert.equal(res.status, 201, res.text);
  await writeFile(join(String(res.json.Mountpoint), 'data.txt'), content);
}

async function volumeFile(name: string): Promise<string | null> {
  const res = await engineRequest(engine!.socketPath, 'GET', `/volumes/${name}`);
  if (res.status !== 200) return null;
  return readFile(join(String(res.json.Mountpoint), 'data.txt'), 'utf8').catch(() => null);
}

async function agentPolicies(): Promise<string[]> {
  const text = await readFile(join(work, 'agent', 'backup-policies.json'), 'utf8').catch(() => '');
  if (text === '') return [];
  const parsed = JSON.parse(text) as { policies?: Array<{ volume: string }> } | { set?: { policies?: Array<{ volume: string }> } };
  const list = 'policies' in parsed ? parsed.policies : 'set' in parsed ? parsed.set?.policies : [];
  return (list ?? []).map((p) => p.volume).sort();
}

describe('signed volume jobs', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  before(async () => {
    [engine] = (await startEngines(1, { prefix: 'signed-vol' })) as [TestEngine];
    work = await mkdtemp(join(tmpdir(), 'dockfleet-signed-vol-'));
    home = join(work, 'home');
    await mkdir(join(work, 'repos'));
    hub = await startTestHub({ dataDir: join(work, 'hub'), port: await freePort() });
    // The browser makes its key first, so that the host's policy file can list it beside the CLI's.
    browser = await launchBrowser();
    ({ page } = await openAsFirstAdmin(browser, hub, 'Volumes'));
    await gotoSteadily(page, `${hub.url}/account`);
    await page.getByRole('button', { name: 'Make a signing key in this browser' }).click();
    browserKey = ((await page.getByLabel('Public key', { exact: true }).textContent()) ?? '').trim();
    assert.match(browserKey, /^ed25519:[A-Za-z0-9_-]{43}$/);
    assert.equal((await cli(['operator-key', 'create', '--name', 'laptop'])).code, 0);
    cliKey = /ed25519:[A-Za-z0-9_-]{43}/.exec((await cli(['operator-key', 'show'])).stdout)![0];
    const sections = Object.fromEntries(['ping', 'version', 'info', 'events', 'system', 'containers', 'exec', 'images', 'volumes', 'networks'].map((s) => [s, true]));
    await writeFile(
      join(work, 'policy.json'),
      JSON.stringify({
        sections,
        ...(process.env.DOCKFLEET_TEST_INTENT_OFF === '1' ? {} : { signedIntent: { operators: [cliKey, browserKey], require: 'mutations' } }),
        backups: { repository: join(work, 'repos', 'main'), repositoryPaths: [join(work, 'repos')] },
      }),
    );
    agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', await mintCode(hub, NODE), '--state', join(work, 'agent'), '--docker', engine.dockerHost, '--policy', join(work, 'policy.json')]);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    await waitFor(async () => (await nodeStatus(hub!, NODE)) === 'online', 10_000, 'node online');
    // The CLI and the UI decide to sign from the node's policy summary: wait until the hub has it.
    await waitFor(async () => (await hub!.api('GET', '/api/v1/nodes')).json.find((n: any) => n.name === NODE)?.policy, 10_000, 'policy summary');
    await createVolume('ledger', 'ledger v1\n');
  });

  after(async () => {
    await browser?.close();
    await agent?.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('a CLI backup and a restore on the signed host are signed and run; the host log names the key', { timeout: 180_000 }, async () => {
    const backup = await cli(['volume', 'backup', NODE, 'ledger', '--wait']);
    assert.equal(backup.code, 0, `${backup.stdout}\n${backup.stderr}`);
    assert.match(backup.stderr, /signed the volume-backup job with operator key ed25519:/);
    const backupJob = lastLine(backup.stdout);
    assert.match(backupJob, /^job_[0-9a-z]+$/);
    assert.match(backup.stdout, /snapshot [0-9a-f]+ of ledger/);
    assert.equal((await hostEntry('volume-backup', backupJob)).key, cliKey, 'the host log names the signing key');

    const restore = await cli(['volume', 'restore', NODE, 'ledger', '--to', 'ledger-copy', '--wait']);
    assert.equal(restore.code, 0, `${restore.stdout}\n${restore.stderr}`);
    assert.match(restore.stderr, /signed the volume-restore job with operator key/);
    assert.equal(await volumeFile('ledger-copy'), 'ledger v1\n', 'the restored volume holds the data');
    assert.equal((await hostEntry('volume-restore', lastLine(restore.stdout))).key, cliKey);

    // Snapshots are a job too: signed and listed.
    const listed = await cli(['volume', 'snapshots', NODE, 'ledger', '--json']);
    assert.equal(listed.code, 0, `${listed.stdout}\n${listed.stderr}`);
    assert.equal(JSON.parse(listed.stdout).length, 1);
  });

  test('without an operator key the jobs are filed unsigned and the host refuses them, saying why', { timeout: 60_000 }, async () => {
    const backup = await cli(['volume', 'backup', NODE, 'ledger', '--wait'], { DOCKFLEET_HOME: join(work, 'empty-home') });
    assert.equal(backup.code, 1, `${backup.stdout}\n${backup.stderr}`);
    assert.match(backup.stderr, /this host requires signed intent: the call carries no signed intent/);
    const restore = await cli(['volume', 'restore', NODE, 'ledger', '--to', 'ledger-nokey', '--wait'], { DOCKFLEET_HOME: join(work, 'empty-home') });
    assert.equal(restore.code, 1, `${restore.stdout}\n${restore.stderr}`);
    assert.match(restore.stderr, /this host requires signed intent/);
    assert.equal(await volumeFile('ledger-nokey'), null, 'nothing was restored');
  });

  test('a hub that changes the job between filing and signing gets no signature; the CLI names the field', { timeout: 60_000 }, async () => {
    const db = new Database(join(hub!.dataDir, 'dockfleet.db'));
    const jobs = hub!.hub.jobs;
    const original = jobs.signedBody.bind(jobs);
    // The compromised hub: the restore now writes over the live volume instead of the new one asked for.
    jobs.signedBody = async (id: string) => {
      const row = db.prepare('SELECT request FROM jobs WHERE id = ?').get(id) as { request: string };
      const request = JSON.parse(row.request);
      request.volume.to = 'ledger';
      db.prepare('UPDATE jobs SET request = ? WHERE id = ?').run(JSON.stringify(request), id);
      return original(id);
    };
    try {
      const restore = await cli(['volume', 'restore', NODE, 'ledger', '--to', 'ledger-safe', '--wait']);
      assert.notEqual(restore.code, 0);
      assert.match(restore.stderr, /refusing to sign the volume-restore job for node signed-vault: the hub's volume\.to differs/);
      const listed = (await hub!.api('GET', `/api/v1/jobs?node=${NODE}`)).json as Array<{ id: string; kind: string; state: string; errorCode: string; error: string }>;
      const job = listed.find((j) => j.kind === 'volume-restore' && j.errorCode === 'signature_declined');
      assert.ok(job, JSON.stringify(listed));
      assert.equal(job.state, 'failed');
      assert.match(job.error, /volume\.to/);
      assert.equal((await hub!.hub.jobs.get(job.id))!.attempts, 0, 'never sent to the host');
      assert.equal(await volumeFile('ledger-safe'), null);
    } finally {
      jobs.signedBody = original;
      db.close();
    }
  });

  test('a policy set by the CLI reaches the agent only signed', { timeout: 60_000 }, async () => {
    const unsigned = await cli(['volume', 'policy', NODE, 'ledger', '--every', '6h', '--keep-last', '3', '--no-sign', '--json']);
    assert.equal(unsigned.code, 0, unsigned.stderr);
    const refused = await hub!.hub.jobs.wait(JSON.parse(unsigned.stdout).job.id, AbortSignal.timeout(20_000));
    assert.equal(refused.state, 'failed');
    assert.match(String(refused.error), /this host requires signed intent/);
    assert.deepEqual(await agentPolicies(), [], 'the unsigned set never reached the agent');

    const signed = await cli(['volume', 'policy', NODE, 'ledger', '--every', '6h', '--keep-last', '3', '--json']);
    assert.equal(signed.code, 0, signed.stderr);
    assert.match(signed.stderr, /signed the volume-policies job/);
    const done = await hub!.hub.jobs.wait(JSON.parse(signed.stdout).job.id, AbortSignal.timeout(20_000));
    assert.equal(done.state, 'succeeded', String(done.error));
    assert.deepEqual(await agentPolicies(), ['ledger']);
    assert.ok((await hostAudit()).some((e) => e.op === 'job volume-policies' && e.result === 'ok' && e.key === cliKey));
  });

  test('Back up now in the web UI on the signed host signs with the browser key and succeeds', { timeout: 180_000 }, async () => {
    await gotoSteadily(page, `${hub!.url}/nodes/${NODE}/volumes/ledger/backups`);
    await page.getByRole('heading', { name: 'Backups of ledger' }).waitFor();
    const button = page.getByRole('button', { name: 'Back up now' });
    await waitFor(async () => button.isEnabled(), 15_000, 'Back up now enabled on the signed host');
    const answer = page.waitForResponse((r) => r.request().method() === 'POST' && /\/volumes\/ledger\/backups$/.test(new URL(r.url()).pathname));
    await button.click();
    const filed = (await (await answer).json()) as { id: string; signing?: { jobs: Array<{ id: string }> } };
    assert.equal(filed.signing?.jobs[0]?.id, filed.id, 'filed for signing');
    const state = page.locator('.backup-now .job-progress .job-state');
    await state.getByText(/succeeded|failed/).waitFor({ timeout: 120_000 });
    assert.match((await state.textContent()) ?? '', /succeeded/, (await page.locator('.backup-now').textContent()) ?? '');
    assert.equal((await hostEntry('volume-backup', filed.id)).key, browserKey, 'the host log names the browser key');
  });
});
