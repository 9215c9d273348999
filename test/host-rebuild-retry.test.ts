/**
 * Retrying a failed host rebuild (issue 14, item 6), end to end with real parts: a real hub, a
 * private dockerd A with a real `dockfleet agent`, a volume backed up to the hub's repository
 * under escrow custody; host A lost; a replacement B enrolled with a wrong recovery code, so the
 * rebuild fails. `dockfleet node rebuild NAME --recovery-code-file F --wait` then starts a new
 * rebuild (a new id, a new restore job) that restores the volume byte for byte, clears the
 * alert, and is audited without the code. Refusals: a rebuild that is not failed, a node never
 * rebuilt, a body with an unknown field.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { engineRequest, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, type DockfleetProcess } from './support/processes.ts';
import { fileHashes, lastLine, replaceRig } from './support/replace-rig.ts';

const NODE = 'retry-01';
const VOLUME = 'ledger';
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let hub: TestHub | undefined;
let dir = '';
let hubDir = '';
let policyFile = '';
const engines: TestEngine[] = [];
const agents: DockfleetProcess[] = [];

const rig = replaceRig({
  node: NODE,
  engines,
  agents,
  get hub() {
    return hub;
  },
  get hubDir() {
    return hubDir;
  },
  get policyFile() {
    return policyFile;
  },
});
const { cli, newEngine, startAgent, rebuild, teardown } = rig;
const hashes = fileHashes;

async function secretFile(text: string): Promise<string> {
  const file = join(dir, `secret-${randomBytes(4).toString('hex')}.txt`);
  await writeFile(file, `${text}\n`, { mode: 0o600 });
  return file;
}

async function openRebuildAlerts(): Promise<any[]> {
  const res = await hub!.api('GET', '/api/v1/alerts');
  return (res.json as any[]).filter((i) => i.key === `host-rebuild:${NODE}` && i.state === 'open');
}

describe('a failed host rebuild retried', { skip: !CI && !haveRestic ? 'restic is not installed' : false, timeout: 600_000 }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-rebuild-retry-'));
    hubDir = join(dir, 'hub');
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { repository: 'hub' } }));
    hub = await startTestHub({ dataDir: hubDir, port: await freePort() });
  });

  after(() => teardown(dir));

  test('a rebuild that failed on a wrong recovery code is started again with the right one and restores the volume byte for byte', async () => {
    const engineA = await newEngine('retry-a');
    const agentA = await startAgent(engineA, join(dir, 'agent-a'), await mintCode(hub!, NODE));

    // Never rebuilt: nothing to retry.
    const none = await hub!.api('POST', `/api/v1/nodes/${NODE}/rebuild`, {});
    assert.equal(none.status, 404, JSON.stringify(none.json));
    assert.equal(none.json.error.code, 'not_found');

    const made = await engineRequest(engineA.socketPath, 'POST', '/volumes/create', { Name: VOLUME });
    assert.equal(made.status, 201, made.text);
    const rootA = String(made.json.Mountpoint);
    for (let i = 0; i < 3; i++) await writeFile(join(rootA, `book-${i}.bin`), randomBytes(512 * 1024 + i * 977));
    const written = await hashes(rootA);
    const backup = await cli('volume', 'backup', NODE, VOLUME, '--repo', 'hub', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    const recoveryCode = /recovery code .*: ([A-Z0-9-]{35})$/m.exec(backup.stdout)?.[1] ?? '';
    assert.ok(recoveryCode, backup.stdout);

    // Host A is lost; B takes over with a wrong code: the rebuild fails.
    await agentA.stop();
    await engineA.stop();
    const engineB = await newEngine('retry-b');
    const replace = await cli('enroll', NODE, '--replace', '--recovery-code-file', await secretFile('WRONG-WRONG-WRONG-WRONG-WRONG-WRONG'));
    assert.equal(replace.code, 0, replace.stderr);
    await startAgent(engineB, join(dir, 'agent-b'), lastLine(replace.stdout));
    const failed = await waitFor(
      async () => {
        const r = await rebuild();
        return r?.state === 'failed' ? r : null;
      },
      180_000,
      'the rebuild to fail',
      250,
    );
    assert.match(failed.error, /recovery code given does not open/);
    await waitFor(async () => (await openRebuildAlerts()).length === 1, 15_000, 'the rebuild alert');

    // A bad body is refused in words and changes nothing.
    const bad = await hub!.api('POST', `/api/v1/nodes/${NODE}/rebuild`, { recoveryCode: recoveryCode, extra: 1 });
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.equal((await rebuild()).id, failed.id);

    // The retry, from the CLI, with the right code.
    const retried = await cli('node', 'rebuild', NODE, '--recovery-code-file', await secretFile(recoveryCode), '--wait');
    assert.equal(retried.code, 0, `${retried.stdout}\n${retried.stderr}`);
    assert.match(retried.stdout, /rebuild of retry-01 done/);
    const newId = /^(rbd_[0-9a-f]+)$/m.exec(retried.stdout)?.[1];
    assert.ok(newId && newId !== failed.id, retried.stdout);
    const done = await rebuild();
    assert.equal(done.id, newId);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(done.volumes[0].state, 'succeeded');
    assert.notEqual(done.volumes[0].job, failed.volumes[0].job, 'a new restore job, not the failed one found again');
    assert.ok(!JSON.stringify(done).includes(recoveryCode), 'the code is not shown back');

    const mounted = await engineRequest(engineB.socketPath, 'GET', `/volumes/${VOLUME}`);
    assert.equal(mounted.status, 200);
    assert.deepEqual(await hashes(String(mounted.json.Mountpoint)), written);

    await waitFor(async () => (await openRebuildAlerts()).length === 0, 15_000, 'the rebuild alert to clear');
    const audit = await hub!.api('GET', `/api/v1/audit?node=${NODE}`);
    const text = JSON.stringify(audit.json);
    assert.ok(text.includes(`retries ${failed.id}`), text.slice(0, 600));
    assert.ok(!text.includes(recoveryCode), 'the code is not in the audit log');

    // A rebuild that is done is not retried.
    const again = await cli('node', 'rebuild', NODE);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /is done; only a failed rebuild is retried/);
  });
});
