/**
 * A host rebuild on a replacement whose policy requires signed intent (issue 14 × issue 13).
 * Real hub, real `dockfleet agent` processes on private engines, restic to the hub's own
 * repository: host A (unsigned) backs a stack's volume up and is lost; host B takes the node
 * over with a policy file that requires signed intent for mutations and lists the test's
 * operator key. Unsigned, the rebuild does not fail: it files the restore awaiting a signature,
 * its step says `awaiting-signature` and the record says why and what to run, and it stays so.
 * `dockfleet node rebuild NODE --sign` refuses a job the hub altered (declined, the field named,
 * the job failed `signature_declined`); after a retry, `--sign --wait` signs the restore and then
 * the deploy: the rebuild ends done, host B has host A's files, and host B's own audit log lists
 * both jobs under the operator key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { containerLogs, engineRequest, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { HASHING_STACK_COMPOSE, fileHashes, lastLine, replaceRig } from './support/replace-rig.ts';

const NODE = 'vault-01';
const STACK = 'ledger';
const VOLUME = `${STACK}_data`;
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let hub: TestHub | undefined;
let dir = '';
let hubDir = '';
let policyFile = '';
let home = '';
/** Host A's files in the volume, by name: their SHA-256. */
let written = new Map<string, string>();
let operatorKey = '';
let engineB: TestEngine | undefined;
const engines: TestEngine[] = [];
const agents: DockfleetProcess[] = [];

const { cli, newEngine, startAgent, rebuild, teardown } = replaceRig({
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

/** `dockfleet operator-key ARGS` with the test's operator home (its signing key stays local). */
async function operatorCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, DOCKFLEET_HOME: home });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** `dockfleet node rebuild NODE --sign ARGS` as the operator: the test's operator home, the hub's data dir for the target. */
async function signRebuild(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return operatorCli('node', 'rebuild', NODE, '--sign', ...args, '--data', hubDir);
}

/** The node's rebuild once `pick` accepts it (or it failed, which `pick` may accept or not). */
async function rebuildWhen(what: string, pick: (r: any) => boolean, timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const r = await rebuild();
      return r && (r.state === 'failed' || pick(r)) ? r : null;
    },
    timeoutMs,
    what,
    250,
  );
}

const COMPOSE = HASHING_STACK_COMPOSE;

describe('a host rebuild on a replacement that requires signed intent', { skip: !CI && !haveRestic ? 'restic is not installed' : false, timeout: 600_000 }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-replace-signed-'));
    hubDir = join(dir, 'hub');
    home = join(dir, 'home');
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { repository: 'hub' } }));
    hub = await startTestHub({ dataDir: hubDir, port: await freePort() });
  });

  after(() => teardown(dir));

  test("unsigned, the rebuild waits for the operator's signature, says so, and does not fail", async () => {
    // Host A, unsigned: a stack whose volume is backed up to the hub.
    const engineA = await newEngine('rsigned-a');
    const agentA = await startAgent(engineA, join(dir, 'agent-a'), await mintCode(hub!, NODE));
    await writeFile(join(dir, 'compose.yml'), COMPOSE);
    const deployed = await cli('stack', 'deploy', STACK, '-f', join(dir, 'compose.yml'), '--node', NODE, '--wait');
    assert.equal(deployed.code, 0, deployed.stderr);
    const vol = await engineRequest(engineA.socketPath, 'GET', `/volumes/${VOLUME}`);
    await writeFile(join(String(vol.json.Mountpoint), 'entries.bin'), randomBytes(64 * 1024));
    await writeFile(join(String(vol.json.Mountpoint), 'notes.txt'), 'kept across the replacement\n');
    written = await fileHashes(String(vol.json.Mountpoint));
    const backup = await cli('volume', 'backup', NODE, VOLUME, '--repo', 'hub', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    const recovery = /recovery code .*: ([A-Z0-9-]{35})$/m.exec(backup.stdout)?.[1] ?? '';
    assert.ok(recovery, backup.stdout);
    await agentA.stop();
    await engineA.stop();

    // The replacement's policy requires signed intent from the test's operator key.
    const created = await operatorCli('operator-key', 'create', '--name', 'drill', '--data', hubDir);
    assert.equal(created.code, 0, created.stderr);
    const shown = await operatorCli('operator-key', 'show');
    const key = /ed25519:[A-Za-z0-9_-]{43}/.exec(shown.stdout)?.[0];
    assert.ok(key, `${shown.stdout}\n${shown.stderr}`);
    operatorKey = key;
    await writeFile(policyFile, JSON.stringify({ backups: { repository: 'hub' }, signedIntent: { operators: [key], require: 'mutations' } }));
    const codeFile = join(dir, 'recovery.txt');
    await writeFile(codeFile, `${recovery}\n`, { mode: 0o600 });
    const replaced = await cli('enroll', NODE, '--replace', '--recovery-code-file', codeFile);
    assert.equal(replaced.code, 0, replaced.stderr);
    engineB = await newEngine('rsigned-b');
    await startAgent(engineB, join(dir, 'agent-b'), lastLine(replaced.stdout));

    const waiting = await waitFor(
      async () => {
        const r = await rebuild();
        return r && (r.state === 'failed' || r.volumes[0]?.state === 'awaiting-signature') ? r : null;
      },
      60_000,
      'the rebuild to wait for a signature',
      250,
    );
    assert.equal(waiting.state, 'restoring', JSON.stringify(waiting));
    assert.equal(waiting.volumes[0].state, 'awaiting-signature');
    assert.match(waiting.waiting, new RegExp(`restore of volume ${VOLUME} waits for the operator's signature: node ${NODE} requires signed intent; run \`dockfleet node rebuild ${NODE} --sign\``));
    const jobs = (await hub!.api('GET', `/api/v1/jobs?node=${NODE}&limit=1000`)).json as any[];
    assert.equal(jobs.find((j) => j.id === waiting.volumes[0].job)?.state, 'awaiting-signature');
    // It keeps waiting: not failed, no stack deployed over missing data.
    await new Promise((r) => setTimeout(r, 3_000));
    const still = await rebuild();
    assert.equal(still.state, 'restoring');
    assert.equal(still.volumes[0].state, 'awaiting-signature');
    assert.equal(still.stacks[0].state, 'pending');
    const nodes = JSON.parse((await cli('nodes', '--json')).stdout) as any[];
    assert.match(nodes.find((n) => n.name === NODE).rebuild.waiting, /requires signed intent/);
  });

  test('--sign refuses a restore the hub altered: declined with the field named, the job fails signature_declined, nothing is signed', async () => {
    const waiting = await rebuild();
    assert.equal(waiting?.volumes[0]?.state, 'awaiting-signature', 'the first test left the rebuild waiting');
    const jobId = String(waiting.volumes[0].job);
    // The hub (or whoever writes its database) now proposes restoring into another volume.
    const db = new Database(join(hubDir, 'dockfleet.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const row = db.prepare('SELECT request FROM jobs WHERE id = ?').get(jobId) as { request: string };
      const request = JSON.parse(row.request);
      assert.equal(request.volume.to, VOLUME);
      request.volume.to = 'ledger_elsewhere';
      assert.equal(db.prepare('UPDATE jobs SET request = ? WHERE id = ?').run(JSON.stringify(request), jobId).changes, 1);
    } finally {
      db.close();
    }
    const refused = await signRebuild();
    assert.equal(refused.code, 1, `${refused.stdout}\n${refused.stderr}`);
    assert.match(
      refused.stderr,
      new RegExp(`refusing to sign the volume-restore job ${jobId} of ${NODE}'s rebuild \\(volume ${VOLUME}\\): the hub's volume\\.to differs from what the rebuild record says; nothing was signed`),
    );
    assert.doesNotMatch(refused.stderr, /^signed:/m);
    const job = (await hub!.api('GET', `/api/v1/jobs/${jobId}`)).json as any;
    assert.equal(job.state, 'failed');
    assert.equal(job.errorCode, 'signature_declined');
    assert.match(job.error, /volume\.to differs/);
    // The rebuild fails for it, and deploys nothing over missing data; a retry files the restore anew.
    const failed = await rebuildWhen('the rebuild to fail', () => false);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.stacks[0].state, 'pending');
    const retried = await cli('node', 'rebuild', NODE);
    assert.equal(retried.code, 0, retried.stderr);
    const again = await rebuildWhen('the retried rebuild to wait for a signature', (r) => r.volumes[0]?.state === 'awaiting-signature');
    assert.equal(again.state, 'restoring', JSON.stringify(again));
    assert.notEqual(again.volumes[0].job, jobId);
  });

  test("--sign --wait signs the restore, then the deploy; the rebuild ends done with host A's files, and host B's audit log names the operator key", async () => {
    const signed = await signRebuild('--wait');
    assert.equal(signed.code, 0, `${signed.stdout}\n${signed.stderr}`);
    assert.match(signed.stderr, new RegExp(`^signed: restore volume ${VOLUME} from the latest snapshot of repository \\S+ on ${NODE} \\(job job_\\w+, operator key ${operatorKey}\\)$`, 'm'));
    assert.match(signed.stderr, new RegExp(`^signed: deploy stack ${STACK} revision 1 on ${NODE} \\(job job_\\w+, operator key ${operatorKey}\\)$`, 'm'));
    assert.match(signed.stderr, new RegExp(`the rebuild of ${NODE} is done`));
    const done = await rebuild();
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.deepEqual(
      done.volumes.map((v: any) => [v.volume, v.state]),
      [[VOLUME, 'succeeded']],
    );
    assert.deepEqual(
      done.stacks.map((s: any) => [s.stack, s.state]),
      [[STACK, 'succeeded']],
    );

    // Host B has host A's files, and the stack's container reads them.
    const vol = await engineRequest(engineB!.socketPath, 'GET', `/volumes/${VOLUME}`);
    assert.deepEqual(await fileHashes(String(vol.json.Mountpoint)), written);
    const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${STACK}`] }));
    const logs = await waitFor(
      async () => {
        const list = (await engineRequest(engineB!.socketPath, 'GET', `/containers/json?filters=${filters}`)).json as any[];
        const text = list[0] ? await containerLogs(engineB!, String(list[0].Id)) : '';
        return text.includes('notes.txt') ? text : null;
      },
      60_000,
      'the stack on host B to hash its data',
    );
    for (const [name, hash] of written) assert.ok(logs.includes(`${hash}  /data/${name}`), `the stack reads ${name} with host A's hash`);

    // Host B's own audit log: the signed restore and deploy, by the operator key.
    const audit = await operatorCli('agent', 'audit', '--state', join(dir, 'agent-b'), '--json');
    assert.equal(audit.code, 0, audit.stderr);
    const entries = JSON.parse(audit.stdout) as any[];
    for (const op of ['job volume-restore', 'job deploy']) {
      const entry = entries.find((e) => e.op === op && e.result === 'ok');
      assert.ok(entry, `${op} in host B's audit log: ${audit.stdout.slice(0, 2_000)}`);
      assert.ok(JSON.stringify(entry).includes(operatorKey), `${op} names the operator key: ${JSON.stringify(entry)}`);
    }
  });
});
