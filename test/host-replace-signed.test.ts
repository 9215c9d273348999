/**
 * A host rebuild on a replacement whose policy requires signed intent (issue 14 × issue 13).
 * Real hub, real `dockfleet agent` processes on private engines, restic to the hub's own
 * repository: host A (unsigned) backs a stack's volume up and is lost; host B takes the node
 * over with a policy file that requires signed intent for mutations and lists the test's
 * operator key. Unsigned, the rebuild does not fail: it files the restore awaiting a signature,
 * its step says `awaiting-signature` and the record says why and what to run, and it stays so.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { engineRequest, stopEngines, type TestEngine } from './support/engines.ts';
import { mintCode, removeHubData, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { HASHING_STACK_COMPOSE, lastLine, replaceRig } from './support/replace-rig.ts';

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
const engines: TestEngine[] = [];
const agents: DockfleetProcess[] = [];

const { cli, newEngine, startAgent, rebuild } = replaceRig({
  node: NODE, engines, agents,
  get hub() { return hub; },
  get hubDir() { return hubDir; },
  get policyFile() { return policyFile; },
});

/** `dockfleet operator-key ARGS` with the test's operator home (its signing key stays local). */
async function operatorCli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawnDockfleet(args, { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined, DOCKFLEET_HOME: home });
  const { code } = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
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

  after(async () => {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await hub?.stop();
    await stopEngines(engines);
    if (hubDir) await removeHubData(hubDir);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('unsigned, the rebuild waits for the operator\'s signature, says so, and does not fail', async () => {
    // Host A, unsigned: a stack whose volume is backed up to the hub.
    const engineA = await newEngine('rsigned-a');
    const agentA = await startAgent(engineA, join(dir, 'agent-a'), await mintCode(hub!, NODE));
    await writeFile(join(dir, 'compose.yml'), COMPOSE);
    const deployed = await cli('stack', 'deploy', STACK, '-f', join(dir, 'compose.yml'), '--node', NODE, '--wait');
    assert.equal(deployed.code, 0, deployed.stderr);
    const vol = await engineRequest(engineA.socketPath, 'GET', `/volumes/${VOLUME}`);
    await writeFile(join(String(vol.json.Mountpoint), 'entries.bin'), randomBytes(64 * 1024));
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
    await writeFile(policyFile, JSON.stringify({ backups: { repository: 'hub' }, signedIntent: { operators: [key], require: 'mutations' } }));
    const codeFile = join(dir, 'recovery.txt');
    await writeFile(codeFile, `${recovery}\n`, { mode: 0o600 });
    const replaced = await cli('enroll', NODE, '--replace', '--recovery-code-file', codeFile);
    assert.equal(replaced.code, 0, replaced.stderr);
    const engineB = await newEngine('rsigned-b');
    await startAgent(engineB, join(dir, 'agent-b'), lastLine(replaced.stdout));

    const waiting = await waitFor(async () => {
      const r = await rebuild();
      return r && (r.state === 'failed' || r.volumes[0]?.state === 'awaiting-signature') ? r : null;
    }, 60_000, 'the rebuild to wait for a signature', 250);
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
});
