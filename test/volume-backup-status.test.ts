/**
 * Volume backup status whoever asked, and escrow from a scheduled backup (issue 14), end to end:
 * a private engine, a real hub, a real `dockfleet agent` process and Debian's restic.
 *  - A backup the hub filed (here through the CLI) is the volume's "last backup" in
 *    `backup-status`, per volume and in the one call per node, as a scheduled one is.
 *  - A scheduled backup that is the first to make a repository's key under escrow custody
 *    sends the wrapped key to the hub's escrow table through the report stream; the recovery
 *    code stays on the host, where `dockfleet agent backup-recovery-code` prints it, and that
 *    code opens the escrowed key, whose password opens the repository.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Decrypter, armor } from 'age-encryption';
import Database from 'better-sqlite3';
import { engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { restic } from '../src/agent/backup/restic-runner.ts';

const NODE = 'status-01';
const ON_DEMAND = 'orders-data';
const SCHEDULED = 'audit-data';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');
const KNOB = { DOCKFLEET_TEST_BACKUP_INTERVALS: '1' };

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
let agent: DockfleetProcess | undefined;
let dir = '';
let hubDir = '';
let stateDir = '';
let repoDir = '';

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, ...KNOB, ...env });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}
const cli = (...args: string[]) => run([...args, '--data', hubDir]);

async function makeVolume(name: string): Promise<void> {
  const res = await engineRequest(engine!.socketPath, 'POST', '/volumes/create', { Name: name });
  assert.equal(res.status, 201, res.text);
  const mount = String(res.json.Mountpoint);
  await writeFile(join(mount, 'data.bin'), randomBytes(256 * 1024 + 3));
  await writeFile(join(mount, 'README'), `${name}\n`);
}

function escrowRows(): Array<{ node: string; repository: string; wrapped_key: string; job_id: string }> {
  const db = new Database(join(hubDir, 'dockfleet.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT node, repository, wrapped_key, job_id FROM volume_backup_escrow ORDER BY repository').all() as any[];
  } finally {
    db.close();
  }
}

describe('volume backup status and escrow from scheduled backups', { skip: !CI && !haveRestic ? 'restic is not installed' : false, timeout: 600_000 }, () => {
  before(async () => {
    Object.assign(process.env, KNOB);
    [engine] = (await startEngines(1, { prefix: 'volstatus' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-volstatus-'));
    hubDir = join(dir, 'hub');
    stateDir = join(dir, 'agent');
    repoDir = join(dir, 'repos');
    await mkdir(repoDir);
    const policyFile = join(dir, 'policy.json');
    // Escrow custody is the default; path repositories under repoDir.
    await writeFile(policyFile, JSON.stringify({ backups: { repository: join(repoDir, 'main'), repositoryPaths: [repoDir] } }));
    hub = await startTestHub({ dataDir: hubDir, port: await freePort() });
    const code = await mintCode(hub, NODE);
    agent = spawnDockfleet(['agent', '--hub', hub.url, '--code', code, '--state', stateDir, '--docker', engine.dockerHost, '--policy', policyFile], KNOB);
    await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
    await makeVolume(ON_DEMAND);
    await makeVolume(SCHEDULED);
  });

  after(async () => {
    delete process.env.DOCKFLEET_TEST_BACKUP_INTERVALS;
    await agent?.stop();
    await hub?.stop();
    if (engine) await stopEngines([engine]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("a backup the hub filed is the volume's last backup, per volume and in the one call per node", async () => {
    const before = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${ON_DEMAND}/backup-status`);
    assert.equal(before.status, 200);
    assert.equal(before.json.lastBackup, null);

    const backup = await cli('volume', 'backup', NODE, ON_DEMAND, '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    const jobId =
      backup.stdout
        .trim()
        .split('\n')
        .find((l) => /^job_/.test(l.trim()))
        ?.trim() ?? /(job_[a-z0-9]+)/.exec(backup.stdout)?.[1];
    assert.ok(jobId, backup.stdout);
    const job = await hub!.api('GET', `/api/v1/jobs/${jobId}`);
    const snapshot = job.json.result.volume.snapshot as string;
    assert.match(snapshot, /^[0-9a-f]{8,64}$/); // restic's summary gives the short id

    const status = await waitFor(
      async () => {
        const s = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${ON_DEMAND}/backup-status`);
        return s.json.lastBackup ? s.json : null;
      },
      15_000,
      'the hub-filed backup in the status',
      200,
    );
    assert.equal(status.lastBackup.ok, true);
    assert.equal(status.lastBackup.snapshot, snapshot);
    assert.equal(status.lastBackup.at, job.json.finishedAt);
    assert.ok(status.lastBackup.bytesAdded > 0);

    const node = await hub!.api('GET', `/api/v1/nodes/${NODE}/backup-status`);
    assert.equal(node.status, 200, JSON.stringify(node.json));
    assert.equal(node.json.node, NODE);
    const row = (node.json.volumes as any[]).find((v) => v.volume === ON_DEMAND);
    assert.deepEqual(row, status);

    // The CLI shows it too.
    const shown = await cli('volume', 'snapshots', NODE, ON_DEMAND);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`last (scheduled )?backup: \\S+ ok, snapshot ${snapshot}`));

    // A failed hub-filed backup is newer, so it is the last backup now, with its reason.
    const failed = await hub!.api('POST', `/api/v1/nodes/${NODE}/volumes/no-such-volume/backups`, {});
    assert.equal(failed.status, 202, JSON.stringify(failed.json));
    const gone = await waitFor(
      async () => {
        const s = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/no-such-volume/backup-status`);
        return s.json.lastBackup ? s.json : null;
      },
      30_000,
      'the failed backup in the status',
      200,
    );
    assert.equal(gone.lastBackup.ok, false);
    assert.match(gone.lastBackup.error, /there is no volume no-such-volume/);

    // Unknown nodes are refused as elsewhere.
    assert.equal((await hub!.api('GET', '/api/v1/nodes/nobody/backup-status')).status, 404);
  });

  test("a scheduled backup that makes a repository's key under escrow sends the wrapped key to the hub; the recovery code is printed on the host and opens it", async () => {
    const scheduledRepo = join(repoDir, 'scheduled');
    const set = await hub!.api('PUT', `/api/v1/nodes/${NODE}/volumes/${SCHEDULED}/backup-policy`, { every: '1h', repository: { kind: 'path', path: scheduledRepo } });
    assert.equal(set.status, 200, JSON.stringify(set.json));

    const status = await waitFor(
      async () => {
        const s = await hub!.api('GET', `/api/v1/nodes/${NODE}/volumes/${SCHEDULED}/backup-status`);
        return s.json.lastBackup?.ok ? s.json : null;
      },
      90_000,
      'the scheduled backup',
      250,
    );

    const row = await waitFor(async () => escrowRows().find((r) => r.repository === scheduledRepo) ?? null, 15_000, 'the escrowed key at the hub', 200);
    assert.equal(row.node, NODE);
    assert.equal(row.job_id, 'scheduled');
    assert.match(row.wrapped_key, /BEGIN AGE ENCRYPTED FILE/);

    // The node call lists both volumes now, the scheduled one with its policy.
    const node = await hub!.api('GET', `/api/v1/nodes/${NODE}/backup-status`);
    const volumes = (node.json.volumes as any[]).map((v) => v.volume);
    assert.ok(volumes.includes(ON_DEMAND) && volumes.includes(SCHEDULED), volumes.join());
    assert.equal((node.json.volumes as any[]).find((v) => v.volume === SCHEDULED).policy.every, '1h');

    // Two repositories hold codes on this host: the command asks which.
    const ambiguous = await run(['agent', 'backup-recovery-code', '--state', stateDir]);
    assert.notEqual(ambiguous.code, 0);
    assert.match(ambiguous.stderr, /--repository/);
    const printed = await run(['agent', 'backup-recovery-code', '--state', stateDir, '--repository', scheduledRepo]);
    assert.equal(printed.code, 0, printed.stderr);
    const code = printed.stdout.trim().split('\n').at(-1)!;
    assert.match(code, /^[A-Z2-9]{5}(-[A-Z2-9]{5}){5}$/);
    // The code is nowhere in what the hub holds or answered.
    assert.ok(!JSON.stringify(escrowRows()).includes(code));
    assert.ok(!JSON.stringify(status).includes(code));

    // The code opens the escrowed key, and that password opens the repository with the snapshot in it.
    const d = new Decrypter();
    d.addPassphrase(code);
    const password = await d.decrypt(armor.decode(row.wrapped_key), 'text');
    const listed = await restic({ repo: scheduledRepo, options: [], env: {}, password, cacheDir: join(dir, 'restic-cache'), signal: AbortSignal.timeout(60_000), args: ['snapshots', '--json'] });
    const snaps = JSON.parse(listed.stdout) as Array<{ id: string }>;
    assert.ok(
      snaps.some((s) => s.id.startsWith(status.lastBackup.snapshot)),
      listed.stdout,
    );

    const wrong = await run(['agent', 'backup-recovery-code', '--state', stateDir, '--repository', '/nowhere']);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /no escrow recovery code is kept for \/nowhere/);
  });
});
