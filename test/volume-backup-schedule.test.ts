/**
 * Per-volume backup policies (issue 14, items 4–5) end to end: a private engine, a real hub, a
 * real `dockfleet agent` process, Debian's restic and a path repository. The agent backs the
 * volume up on its own clock, keeps doing so while the hub is stopped, and the outcomes reach
 * the hub when it is back; retention keeps the last N snapshots; a test-restore verifies the
 * latest snapshot; a repository with its data packs damaged fails verification, is shown, raises
 * the backup-unverified alert, and the alert clears when verification succeeds again.
 *
 * Test knobs: DOCKFLEET_TEST_BACKUP_INTERVALS=1 (hub and agent) allows intervals under a
 * minute; the hub's alertTuning.backupVerifyMaxAgeMs stands in for the one-day limit.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open as openFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'sched-01';
const VOLUME = 'ledger-data';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');
const KNOB = { DOCKFLEET_TEST_BACKUP_INTERVALS: '1' };
const VERIFY_MAX_AGE_MS = 30_000;

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let dir = '';
let hubDir = '';
let port = 0;
let stateDir = '';
let repoDir = '';

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet([...args, '--data', hubDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, ...KNOB });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

async function startHub(): Promise<TestHub> {
  return startTestHub({ dataDir: hubDir, port, run: { alertTuning: { backupVerifyMaxAgeMs: VERIFY_MAX_AGE_MS } } });
}

async function status(): Promise<any> {
  const res = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-status`);
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

async function snapshots(): Promise<any[]> {
  const listed = await cli('volume', 'snapshots', NODE, VOLUME, '--json');
  assert.equal(listed.code, 0, listed.stderr);
  return JSON.parse(listed.stdout) as any[];
}

async function agentReports(): Promise<any[]> {
  const text = await readFile(join(stateDir, 'backup-reports.json'), 'utf8').catch(() => '{"reports":[]}');
  return (JSON.parse(text) as { reports: any[] }).reports;
}

async function packFiles(): Promise<Array<{ path: string; size: number }>> {
  const root = join(repoDir, 'main', 'data');
  const out: Array<{ path: string; size: number }> = [];
  for (const sub of await readdir(root)) {
    for (const f of await readdir(join(root, sub))) out.push({ path: join(root, sub, f), size: (await stat(join(root, sub, f))).size });
  }
  return out;
}

async function incident(): Promise<any | undefined> {
  const res = await hub!.api('GET', '/api/v1/alerts');
  return (res.json as any[]).find((i) => i.kind === 'backup-unverified' && i.node === NODE && i.subject === VOLUME);
}

describe('scheduled volume backups and their verification', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  before(async () => {
    Object.assign(process.env, KNOB);
    [engine] = (await startEngines(1, { prefix: 'volsched' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-volsched-'));
    hubDir = join(dir, 'hub');
    stateDir = join(dir, 'agent');
    repoDir = join(dir, 'repos');
    await mkdir(repoDir);
    const policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { custody: 'host-only', repository: join(repoDir, 'main'), repositoryPaths: [repoDir] } }));
    port = await freePort();
    hub = await startHub();
    const code = await mintCode(hub, NODE);
    agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', stateDir, '--docker', engine.dockerHost, '--policy', policyFile], KNOB);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    const res = await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: VOLUME });
    assert.equal(res.status, 201, res.text);
    const mount = String(res.json.Mountpoint);
    await mkdir(join(mount, 'books'), { recursive: true });
    await writeFile(join(mount, 'books/2026.bin'), randomBytes(2 * 1024 * 1024 + 5));
    await writeFile(join(mount, 'README'), 'ledger\n');
  });

  after(async () => {
    delete process.env.DOCKFLEET_TEST_BACKUP_INTERVALS;
    await agent?.stop();
    await hub?.stop({ keepData: true });
    if (engine) await stopEngines([engine]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a policy is refused in words when its interval is malformed, and a sub-minute one only under the test knob', async () => {
    const bad = await hub!.api('PUT', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-policy`, { every: 'often' });
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.equal(bad.json.error.code, 'validation_failed');
    delete process.env.DOCKFLEET_TEST_BACKUP_INTERVALS;
    const short = await hub!.api('PUT', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-policy`, { every: '5s' });
    process.env.DOCKFLEET_TEST_BACKUP_INTERVALS = '1';
    assert.equal(short.status, 400, JSON.stringify(short.json));
    assert.equal((await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${VOLUME}/backup-policy`)).status, 404);
  });

  test('the agent backs up on its own, also while the hub is away; retention keeps N; verification shows; a broken repository fails it and raises the alert until it verifies again', {
    timeout: 900_000,
  }, async () => {
    const set = await cli('volume', 'policy', NODE, VOLUME, '--every', '4s', '--keep-last', '2', '--verify-every', '6s', '--json');
    assert.equal(set.code, 0, set.stderr);
    const filed = JSON.parse(set.stdout);
    assert.equal(filed.policy.every, '4s');
    assert.deepEqual(filed.policy.retention, { keepLast: 2 });
    assert.equal(filed.job.kind, 'volume-policies');

    // Two backups on the agent's own clock, each reported with its snapshot.
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const s = await status();
        if (s.lastBackup?.ok && s.lastBackup.snapshot) seen.add(s.lastBackup.snapshot);
        return seen.size >= 2;
      },
      90_000,
      'two scheduled backups reported',
      250,
    );

    // The hub stops; the agent keeps backing up and keeps the outcomes.
    await hub!.stop({ keepData: true });
    hub = undefined;
    const stoppedAt = Date.now();
    const whileAway = await waitFor(
      async () => {
        const mine = (await agentReports()).find((r) => r.volume === VOLUME);
        return mine?.backup?.ok && mine.backup.at > stoppedAt + 1_000 ? mine.backup : null;
      },
      60_000,
      'a backup while the hub is away',
    );

    // The hub comes back: what happened while it was away arrives.
    hub = await startHub();
    await waitFor(
      async () => {
        const s = await status();
        return s.lastBackup && Date.parse(s.lastBackup.at) >= whileAway.at ? s : null;
      },
      60_000,
      'the outcome from while the hub was away',
    );

    // Retention: only the last 2 snapshots are kept.
    const kept = await waitFor(
      async () => {
        const list = await snapshots();
        return list.length === 2 ? list : null;
      },
      60_000,
      'retention to keep 2 snapshots',
      1_000,
    );
    assert.equal(kept.length, 2);

    // A verification ran and shows, in the status and on the snapshot it checked.
    const verified = await waitFor(
      async () => {
        const s = await status();
        return s.lastVerified?.ok ? s : null;
      },
      60_000,
      'a successful verification',
      250,
    );
    assert.equal(verified.lastVerified.detail, 'verified');
    assert.ok(verified.lastVerified.files >= 2, JSON.stringify(verified.lastVerified));
    assert.ok(verified.lastVerifiedOkAt);
    assert.equal(await incident().then((i) => i?.state === 'open'), false);
    // The scratch directory is gone after each verification (one may be running right now).
    await waitFor(async () => (await readdir(join(stateDir, 'backup-verify')).catch(() => [])).length === 0, 20_000, 'the verification scratch directory to be removed', 100);

    // The repository's data packs are damaged (16 bytes overwritten mid-file, as a failing disk
    // would): the next verification fails and says why. Moving packs away instead makes restic
    // 0.14 retry each missing file for about a minute; a damaged one fails at once.
    const damaged = (await packFiles()).filter((p) => p.size > 1024 * 1024);
    assert.ok(damaged.length > 0, 'a data pack holding the 2 MiB file');
    const originals: Array<{ path: string; at: number; bytes: Buffer }> = [];
    for (const p of damaged) {
      const at = Math.floor(p.size / 2);
      const fh = await openFile(p.path, 'r+');
      const bytes = Buffer.alloc(16);
      await fh.read(bytes, 0, 16, at);
      await fh.write(Buffer.from(bytes.map((b) => b ^ 0xff)), 0, 16, at);
      await fh.close();
      originals.push({ path: p.path, at, bytes });
    }
    const failedAt = Date.now();
    const failed = await waitFor(
      async () => {
        const s = await status();
        return s.lastVerified && !s.lastVerified.ok && Date.parse(s.lastVerified.at) > failedAt ? s : null;
      },
      60_000,
      'a failed verification',
      250,
    );
    assert.match(failed.lastVerified.detail, /not verified|difference/);
    assert.match(failed.lastVerified.detail, /ciphertext verification failed|differ/);
    // The CLI shows it too (a later verification of the still-damaged repository fails as well).
    let shown = '';
    await waitFor(
      async () => {
        shown = (await cli('volume', 'snapshots', NODE, VOLUME)).stdout;
        return /last verified: .*FAILED/.test(shown);
      },
      20_000,
      'the CLI to show the failed verification',
      1_000,
    ).catch((err: Error) => assert.fail(`${err.message}; it printed: ${shown}`));

    // No success within the limit: the alert names node and volume.
    const open = await waitFor(
      async () => {
        const i = await incident();
        return i?.state === 'open' ? i : null;
      },
      VERIFY_MAX_AGE_MS + 30_000,
      'the backup-unverified alert',
      500,
    );
    assert.match(open.title, new RegExp(`${VOLUME}.*${NODE}`));

    // The packs are repaired: a verification succeeds and the alert resolves.
    for (const o of originals) {
      const fh = await openFile(o.path, 'r+');
      await fh.write(o.bytes, 0, 16, o.at);
      await fh.close();
    }
    await waitFor(async () => (await incident())?.state === 'resolved', 240_000, 'the alert to clear', 500);
  });
});
