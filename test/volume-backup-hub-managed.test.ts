/**
 * Hub-managed backup custody that runs unattended (issue 14), end to end with real parts: a
 * private engine, a real hub, real `dockfleet agent` processes and Debian's restic. Nobody ever
 * gives a repository password: the hub makes it on the first backup and sends it sealed.
 *  - a scheduled backup to the hub's own repository runs and its snapshot restores byte for byte;
 *  - a scheduled backup to a URL repository (`local:/path`, restic's own URL form) gets the
 *    credential set with the policy (--secret-env-file): restic runs through a wrapper
 *    (DOCKFLEET_RESTIC) that records AWS_ACCESS_KEY_ID as restic's environment holds it, so the
 *    test sees the value reach restic itself (the local backend ignores it);
 *  - the password and the credential are in neither the hub's files (database included) nor any
 *    API answer (a signed body included), the hub's log, the agent's output or its state dir;
 *  - a replacement host's rebuild restores the hub-managed volume with no password given.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { HUB_KEPT_FILE } from '../src/protocol/hub-kept-secrets.ts';
import { DATABASE_FILE } from '../src/hub/run-hub.ts';
import { engineRequest, startEngines, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { spawnDockfleet, type DockfleetProcess } from './support/processes.ts';

const NODE = 'managed-01';
const HUB_VOL = 'vault-data';
const URL_VOL = 'ledger-data';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');
const KNOB = { DOCKFLEET_TEST_BACKUP_INTERVALS: '1' };
const MARKER = `dummy-key-${randomBytes(8).toString('hex')}`;

let engine: TestEngine | undefined;
let hub: TestHub | undefined;
const agents: DockfleetProcess[] = [];
let dir = '';
let hubDir = '';
let repoDir = '';
let wrapLog = '';
let hubLog = '';
const answers: string[] = [];

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet([...args, '--data', hubDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, ...KNOB });
  const { code } = await p.exited;
  answers.push(p.stdout(), p.stderr());
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await hub!.api(method, path, body);
  answers.push(JSON.stringify(res.json));
  return res;
}

async function startAgent(stateDir: string, code: string): Promise<DockfleetProcess> {
  const policyFile = join(dir, 'policy.json');
  const agent = spawnDockfleet(['agent', '--hub', hub!.url, '--code', code, '--state', stateDir, '--docker', engine!.dockerHost, '--policy', policyFile], {
    ...KNOB,
    DOCKFLEET_RESTIC: join(dir, 'restic-wrap.sh'),
    DOCKFLEET_LOG_LEVEL: 'debug',
  });
  agents.push(agent);
  await agent.waitForLine(new RegExp(`agent ${NODE} connected`), 30_000);
  return agent;
}

async function mountpoint(name: string): Promise<string | null> {
  const res = await engineRequest(engine!.socketPath, 'GET', `/volumes/${name}`);
  return res.status === 200 ? String(res.json.Mountpoint) : null;
}

async function hashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(root, { recursive: true })).map(String).sort()) {
    if ((await stat(join(root, name))).isFile())
      out.set(
        name,
        createHash('sha256')
          .update(await readFile(join(root, name)))
          .digest('hex'),
      );
  }
  return out;
}

async function status(volume: string): Promise<any> {
  return (await api('GET', `/api/v1/nodes/${NODE}/volumes/${volume}/backup-status`)).json;
}

/** Every file under `root`, as bytes, that holds `needle`. */
async function filesHolding(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of (await readdir(root, { recursive: true })).map(String)) {
    const path = join(root, name);
    const info = await stat(path).catch(() => null);
    if (info?.isFile() && (await readFile(path)).includes(Buffer.from(needle))) found.push(path);
  }
  return found;
}

let written = new Map<string, string>();

describe('hub-managed backup custody, unattended', { skip: !CI && !haveRestic ? 'restic is not installed' : false }, () => {
  before(async () => {
    Object.assign(process.env, KNOB);
    [engine] = (await startEngines(1, { prefix: 'volmanaged' })) as [TestEngine];
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-volmanaged-'));
    hubDir = join(dir, 'hub');
    repoDir = join(dir, 'repos');
    wrapLog = join(dir, 'restic-env.log');
    await mkdir(repoDir);
    // restic through a wrapper that records the credential as restic's own environment has it.
    await writeFile(join(dir, 'restic-wrap.sh'), `#!/bin/sh\nif [ -n "$AWS_ACCESS_KEY_ID" ]; then printf '%s\\n' "$AWS_ACCESS_KEY_ID" >> '${wrapLog}'; fi\nexec /usr/bin/restic "$@"\n`);
    await chmod(join(dir, 'restic-wrap.sh'), 0o755);
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ backups: { custody: 'hub-managed', repository: 'hub', repositoryPaths: [repoDir] } }));
    const sink = new Writable({
      write(chunk, _enc, done) {
        hubLog += chunk.toString();
        done();
      },
    });
    hub = await startTestHub({ dataDir: hubDir, log: pino({ level: 'debug' }, sink) });
    await startAgent(join(dir, 'agent-a'), await mintCode(hub, NODE));
    for (const volume of [HUB_VOL, URL_VOL]) {
      const res = await engineRequest(engine.socketPath, 'POST', '/volumes/create', { Name: volume });
      assert.equal(res.status, 201, res.text);
      const mount = String(res.json.Mountpoint);
      await mkdir(join(mount, 'books'), { recursive: true });
      await writeFile(join(mount, 'books/2026.bin'), randomBytes(1024 * 1024 + 7));
      await writeFile(join(mount, 'README'), `${volume}\n`);
    }
    written = await hashes((await mountpoint(HUB_VOL))!);
  });

  after(async () => {
    delete process.env.DOCKFLEET_TEST_BACKUP_INTERVALS;
    for (const a of agents) await a.stop();
    await hub?.stop({ keepData: true });
    if (engine) await stopEngines([engine]);
    if (dir) {
      await rm(dir, { recursive: true, force: true });
      await rm(`${hubDir}.master.key`, { force: true });
    }
  });

  test('a scheduled backup to the hub repository runs with no password given by anyone, and restores byte for byte', { timeout: 300_000 }, async () => {
    const set = await cli('volume', 'policy', NODE, HUB_VOL, '--every', '5s', '--repo', 'hub', '--json');
    assert.equal(set.code, 0, set.stderr);
    const backedUp = await waitFor(
      async () => {
        const s = await status(HUB_VOL);
        if (s.lastBackup && !s.lastBackup.ok) throw new Error(`the scheduled backup failed: ${s.lastBackup.error}`);
        return s.lastBackup?.ok && s.lastBackup.snapshot ? s.lastBackup : null;
      },
      120_000,
      'a scheduled hub-managed backup',
      250,
    );
    assert.ok(backedUp.snapshot);
    const restored = await cli('volume', 'restore', NODE, HUB_VOL, '--repo', 'hub', '--to', `${HUB_VOL}-copy`, '--wait');
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    assert.deepEqual(await hashes((await mountpoint(`${HUB_VOL}-copy`))!), written);
  });

  test('a scheduled backup to a URL repository gets the credential set with the policy; it is shown back by name only', { timeout: 300_000 }, async () => {
    const envFile = join(dir, 'repo.env');
    await writeFile(envFile, `AWS_ACCESS_KEY_ID=${MARKER}\n`, { mode: 0o600 });
    const url = `local:${join(repoDir, 'by-url')}`;
    const set = await cli('volume', 'policy', NODE, URL_VOL, '--every', '5s', '--repo', url, '--secret-env-file', envFile, '--json');
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout).secretEnvNames, ['AWS_ACCESS_KEY_ID']);
    await waitFor(
      async () => {
        const s = await status(URL_VOL);
        if (s.lastBackup && !s.lastBackup.ok) throw new Error(`the scheduled backup failed: ${s.lastBackup.error}`);
        return s.lastBackup?.ok && s.lastBackup.snapshot;
      },
      120_000,
      'a scheduled backup to the URL repository',
      250,
    );
    // restic itself ran with the credential in its environment.
    assert.ok((await readFile(wrapLog, 'utf8')).split('\n').includes(MARKER), "the credential reached restic's environment");
    assert.ok(existsSync(join(repoDir, 'by-url', 'config')), "the repository is at the URL's path");
    const shown = await api('GET', `/api/v1/nodes/${NODE}/volumes/${URL_VOL}/backup-policy`);
    assert.equal(shown.status, 200);
    assert.deepEqual(shown.json.secretEnvNames, ['AWS_ACCESS_KEY_ID']);
    // The agent keeps the policy's secrets sealed, never in the clear.
    const kept = await readFile(join(dir, 'agent-a', 'backup-policy-secrets.json'), 'utf8');
    assert.match(kept, /"sealed"/);
    assert.ok(!kept.includes(MARKER));
  });

  test('a volume job filed for signing shows no hub-kept secret in its signed body', async () => {
    const filed = await api('POST', `/api/v1/nodes/${NODE}/volumes/${HUB_VOL}/backups`, { repository: { kind: 'hub' }, sign: true });
    assert.equal(filed.status, 202, JSON.stringify(filed.json));
    const body = JSON.parse(filed.json.signing.jobs[0].signedBody);
    assert.deepEqual(body.secrets, { env: {}, files: {} });
    // …while the job the agent will receive does carry the password, sealed in its secrets.
    const record = (await hub!.hub.jobs.signingJobs()).find((j) => j.id === filed.json.id);
    assert.ok(record);
    assert.deepEqual(Object.keys(hub!.hub.jobs.request(record).secrets.files), [HUB_KEPT_FILE]);
    // The signature still covers the rest: the volume and its repository.
    assert.deepEqual(body.volume, { volume: HUB_VOL, repository: { kind: 'hub' } });
    assert.equal((await api('POST', `/api/v1/jobs/${filed.json.id}/decline`, { reason: 'test' })).status, 200);
  });

  test('a replacement host rebuilds the hub-managed volumes with no password given', { timeout: 300_000 }, async () => {
    await agents[0]!.stop();
    for (const volume of [HUB_VOL, `${HUB_VOL}-copy`, URL_VOL]) {
      const res = await engineRequest(engine!.socketPath, 'DELETE', `/volumes/${volume}`);
      assert.equal(res.status, 204, res.text);
    }
    const replace = await api('POST', '/api/v1/enrollments', { name: NODE, replace: true });
    assert.equal(replace.status, 201, JSON.stringify(replace.json));
    await startAgent(join(dir, 'agent-b'), replace.json.code);
    const done = await waitFor(
      async () => {
        const r = (await api('GET', `/api/v1/nodes/${NODE}/rebuild`)).json;
        return r?.state === 'done' || r?.state === 'failed' ? r : null;
      },
      180_000,
      'the rebuild to finish',
      250,
    );
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.deepEqual(await hashes((await mountpoint(HUB_VOL))!), written);
  });

  test('the password and the credential appear nowhere in the clear: hub files and database, API answers, logs, agent output and state', async () => {
    const db = new Database(join(hubDir, DATABASE_FILE), { readonly: true, fileMustExist: true });
    let rows: Array<{ node: string; repository: string; sealed_password: string }>;
    try {
      rows = db.prepare('SELECT node, repository, sealed_password FROM volume_backup_repo_keys').all() as typeof rows;
    } finally {
      db.close();
    }
    assert.deepEqual(rows.map((r) => r.repository).sort(), ['hub', `local:${join(repoDir, 'by-url')}`].sort());
    const passwords = rows.map((r) => hub!.hub.secrets.openText(r.sealed_password, `volume-repo-key:${r.node}\n${r.repository}`));
    for (const p of passwords) assert.equal(Buffer.from(p, 'base64').length, 32);
    // Jobs as the API shows them, each job's detail included.
    const jobs = (await api('GET', `/api/v1/jobs?node=${NODE}&limit=1000`)).json as Array<{ id: string }>;
    for (const j of jobs) await api('GET', `/api/v1/jobs/${j.id}`);
    await api('GET', `/api/v1/nodes/${NODE}/backup-status`);
    for (const secret of [...passwords, MARKER]) {
      assert.deepEqual(await filesHolding(hubDir, secret), [], "in the hub's data dir (database, WAL)");
      assert.ok(!answers.some((a) => a.includes(secret)), 'in an API or CLI answer');
      assert.ok(!hubLog.includes(secret), "in the hub's log");
      for (const a of agents) assert.ok(!a.stdout().includes(secret) && !a.stderr().includes(secret), "in an agent's output");
      assert.deepEqual(await filesHolding(join(dir, 'agent-a'), secret), [], "in the first agent's state dir");
      assert.deepEqual(await filesHolding(join(dir, 'agent-b'), secret), [], "in the replacement's state dir");
    }
    assert.ok(hubLog.length > 0 && agents[0]!.stderr().length > 0, 'the logs searched are not empty');
  });
});
