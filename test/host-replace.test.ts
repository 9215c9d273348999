/**
 * The host-replacement drill (issue 14, item 6), end to end with real parts: a real hub, a
 * private dockerd A with a real `dockfleet agent`, a stack whose named volume holds files of
 * known hashes, an escrow-custody backup to the hub's own repository; then host A is lost
 * (agent stopped, engine A and its data root thrown away), a new empty engine B gets
 * `dockfleet enroll NAME --replace --recovery-code-file F` and a new agent with a fresh state
 * dir. The old identity is refused, the volume comes back with the same hashes, the stack runs
 * again on B and reads its data, and the rebuild says done. Faults: a recovery code that does
 * not open the key stops the rebuild before any stack and says why (and raises an alert); a hub
 * restarted mid-rebuild resumes it with the same jobs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { containerLogs, engineRequest, type TestEngine } from './support/engines.ts';
import { mintCode, startTestHub, waitFor, type TestHub } from './support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from './support/processes.ts';
import { HASHING_STACK_COMPOSE, fileHashes, lastLine, replaceRig } from './support/replace-rig.ts';

const NODE = 'store-01';
const STACK = 'notes';
const VOLUME = `${STACK}_data`;
const CI = process.env.CI === 'true';
const haveRestic = existsSync('/usr/bin/restic');

let hub: TestHub | undefined;
let port = 0;
let dir = '';
let hubDir = '';
let policyFile = '';
const engines: TestEngine[] = [];
const agents: DockfleetProcess[] = [];
/** File name → SHA-256 of what the test wrote into the volume on host A. */
const written = new Map<string, string>();
let recoveryCode = '';

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

async function mountpoint(engine: TestEngine, name: string): Promise<string | null> {
  const res = await engineRequest(engine.socketPath, 'GET', `/volumes/${name}`);
  return res.status === 200 ? String(res.json.Mountpoint) : null;
}

async function stackContainers(engine: TestEngine): Promise<Array<Record<string, any>>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${STACK}`] }));
  return (await engineRequest(engine.socketPath, 'GET', `/containers/json?all=1&filters=${filters}`)).json as Array<Record<string, any>>;
}

async function finalRebuild(id: string | null, timeoutMs = 180_000): Promise<any> {
  return waitFor(
    async () => {
      const r = await rebuild();
      return r && (id === null || r.id === id) && (r.state === 'done' || r.state === 'failed') ? r : null;
    },
    timeoutMs,
    'the rebuild to finish',
    250,
  );
}

/** A replacement code for NODE, with the recovery code in a file as an operator would give it. */
async function replaceCode(code: string): Promise<string> {
  const file = join(dir, `recovery-${randomBytes(4).toString('hex')}.txt`);
  await writeFile(file, `${code}\n`, { mode: 0o600 });
  const res = await cli('enroll', NODE, '--replace', '--recovery-code-file', file);
  assert.equal(res.code, 0, res.stderr);
  return lastLine(res.stdout);
}

const COMPOSE = HASHING_STACK_COMPOSE;

describe("a lost host rebuilt from the hub's record", { skip: !CI && !haveRestic ? 'restic is not installed' : false, timeout: 600_000 }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dockfleet-replace-'));
    hubDir = join(dir, 'hub');
    policyFile = join(dir, 'policy.json');
    await writeFile(policyFile, JSON.stringify({ backups: { repository: 'hub' } }));
    port = await freePort();
    hub = await startTestHub({ dataDir: hubDir, port });
  });

  after(() => teardown(dir));

  test('enroll --replace is refused for a node that does not exist, with the reason; plain enroll of an existing name stays name_taken', async () => {
    const missing = await cli('enroll', 'no-such-node', '--replace');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no node named no-such-node to replace/);
    await mintCode(hub!, NODE);
    const res = await hub!.api('POST', '/api/v1/enrollments', { name: 'ghost', replace: true });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'node_not_found');
  });

  test('the drill: host A lost, a new engine B takes over NAME, the volume comes back with the same hashes and the stack runs on B with its data', async () => {
    const engineA = await newEngine('replace-a');
    const stateA = join(dir, 'agent-a');
    const agentA = await startAgent(engineA, stateA, await mintCode(hub!, NODE));
    await writeFile(join(dir, 'compose.yml'), COMPOSE);
    const deployed = await cli('stack', 'deploy', STACK, '-f', join(dir, 'compose.yml'), '--node', NODE, '--wait');
    assert.equal(deployed.code, 0, deployed.stderr);

    // Data written into the stack's volume on host A, then backed up to the hub (escrow custody).
    const rootA = (await mountpoint(engineA, VOLUME))!;
    assert.ok(rootA, 'the stack made its volume');
    for (let i = 0; i < 4; i++) await writeFile(join(rootA, `part-${i}.bin`), randomBytes(1024 * 1024 + i * 4099));
    await writeFile(join(rootA, 'notes.txt'), 'what host A knew\n'.repeat(1000));
    for (const [name, hash] of await hashes(rootA)) written.set(name, hash);
    const backup = await cli('volume', 'backup', NODE, VOLUME, '--repo', 'hub', '--wait');
    assert.equal(backup.code, 0, backup.stderr);
    recoveryCode = /recovery code .*: ([A-Z0-9-]{35})$/m.exec(backup.stdout)?.[1] ?? '';
    assert.ok(recoveryCode, `the first escrow backup shows the recovery code: ${backup.stdout}`);

    // Host A is lost: its agent stops, its engine and data root are thrown away.
    await agentA.stop();
    await engineA.stop();
    assert.equal(existsSync(engineA.dataRoot), false, "engine A's data root is gone");

    const engineB = await newEngine('replace-b');
    const code = await replaceCode(recoveryCode);
    const replacedAt = Date.now();
    await startAgent(engineB, join(dir, 'agent-b'), code);

    // The old identity is refused, like a revoked node's.
    const old = spawnDockfleet(['agent', '--hub', hub!.url, '--state', stateA, '--docker', engineB.dockerHost, '--policy', policyFile]);
    agents.push(old);
    const exit = await Promise.race([old.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    assert.ok(exit, "the old host's agent gives up");
    assert.notEqual(exit.code, 0);
    assert.doesNotMatch(old.stdout(), /connected/);
    assert.match(old.stderr(), /key_retired|taken over|rotated away/);

    const done = await finalRebuild(null);
    assert.equal(done.state, 'done', JSON.stringify(done));
    const tookMs = Date.now() - replacedAt;
    assert.deepEqual(
      done.volumes.map((v: any) => [v.volume, v.state, v.escrowed]),
      [[VOLUME, 'succeeded', true]],
    );
    assert.deepEqual(
      done.stacks.map((s: any) => [s.stack, s.state]),
      [[STACK, 'succeeded']],
    );

    // Same files, same hashes, on the new engine.
    const rootB = (await mountpoint(engineB, VOLUME))!;
    assert.ok(rootB, 'the volume exists on B');
    assert.deepEqual(await hashes(rootB), written);
    // The stack's container on B reads them and prints the same hashes.
    const containers = await waitFor(
      async () => {
        const list = await stackContainers(engineB);
        return list.length > 0 && list.every((c) => c.State === 'running') ? list : null;
      },
      60_000,
      'the stack running on B',
    );
    const logs = await waitFor(
      async () => {
        const text = await containerLogs(engineB, String(containers[0]!.Id));
        return text.includes('notes.txt') ? text : null;
      },
      30_000,
      'the stack container to hash its data',
    );
    for (const [name, hash] of written) assert.ok(logs.includes(`${hash}  /data/${name}`), `the stack reads ${name} with its hash`);

    // The node kept its name; the node list carries the rebuild; the audit log has the takeover.
    const nodes = await cli('nodes', '--json');
    const view = (JSON.parse(nodes.stdout) as any[]).find((n) => n.name === NODE);
    assert.equal(view.status, 'online');
    assert.equal(view.rebuild.state, 'done');
    const audit = await hub!.api('GET', `/api/v1/audit?node=${NODE}`);
    assert.ok(JSON.stringify(audit.json).includes('REPLACE'), `an audit row records the replacement: ${JSON.stringify(audit.json).slice(0, 400)}`);
    console.log(`# drill: ${written.size} files restored and the stack healthy ${tookMs} ms after the replacement enrolled`);
  });

  test('a recovery code that does not open the escrowed key stops the rebuild before any stack, says why, and raises an alert', async () => {
    const engineC = await newEngine('replace-c');
    await startAgent(engineC, join(dir, 'agent-c'), await replaceCode('WRONG-WRONG-WRONG-WRONG-WRONG-WRONG'));
    const failed = await finalRebuild(null);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error, new RegExp(`restoring volume ${VOLUME} failed, so no stack was deployed over missing data: .*recovery code given does not open`));
    assert.equal(failed.stacks[0].state, 'pending');
    assert.deepEqual(await stackContainers(engineC), [], 'no stack container on C');
    const alerts = await waitFor(
      async () => {
        const res = await hub!.api('GET', '/api/v1/alerts');
        return JSON.stringify(res.json).includes(`host-rebuild:${NODE}`) ? res.json : null;
      },
      15_000,
      'the rebuild alert',
    );
    assert.ok(alerts);
  });

  test('a hub restarted mid-rebuild resumes it with the same jobs, and it finishes', async () => {
    const engineD = await newEngine('replace-d');
    const code = await replaceCode(recoveryCode);
    await startAgent(engineD, join(dir, 'agent-d'), code);
    const started = await waitFor(rebuild, 10_000, 'the rebuild to be recorded');
    assert.notEqual(started.state, 'done', 'caught midway');
    await hub!.stop({ keepData: true });
    hub = await startTestHub({ dataDir: hubDir, port });
    const done = await finalRebuild(started.id);
    assert.equal(done.state, 'done', JSON.stringify(done));
    const jobs = (await hub!.api('GET', `/api/v1/jobs?node=${NODE}&limit=1000`)).json as any[];
    const restoreJobs = jobs.filter((j) => j.kind === 'volume-restore' && j.createdAt >= new Date(started.startedAt).toISOString());
    // The restore job filed before the restart is found again, not filed anew. If the restart cut
    // its restic connection to the hub repository mid-transfer, that job failed and the rebuild
    // filed it once more (its own key, ':2'): at most two, the last one the step's.
    assert.ok(restoreJobs.length >= 1 && restoreJobs.length <= 2, `one restore job, or two when the restart cut the first: ${restoreJobs.length}`);
    const newest = [...restoreJobs].sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt))).at(-1);
    assert.equal(done.volumes[0].job, newest.id);
    if (restoreJobs.length === 2) assert.equal(restoreJobs.filter((j) => j.state === 'failed').length, 1, 'the cut one failed, the second succeeded');
    assert.deepEqual(await hashes((await mountpoint(engineD, VOLUME))!), written);
    // The alert of the failed rebuild clears once a rebuild of the node is done.
    await waitFor(
      async () => {
        const res = await hub!.api('GET', '/api/v1/alerts');
        const open = (res.json as any[]).filter((i) => String(i.key).startsWith('host-rebuild:') && i.resolvedAt === null);
        return open.length === 0;
      },
      15_000,
      'the rebuild alert to clear',
    );
  });
});
