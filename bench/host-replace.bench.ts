/**
 * The host-replacement drill, timed (issue 14): from the replacement's enrollment
 * (`dockfleet enroll NAME --replace`, a new agent on a new empty engine) to the stack healthy
 * with its data (the stack's container prints the hash of every file it finds in its volume,
 * and they match), for a volume of BENCH_VOLUME_MIB. Beside it, in the same run and on the
 * same engine, the same work by hand: `restic restore` of the latest snapshot straight from a
 * local copy of the same hub repository into a new volume, then the container created and
 * started through the Engine API, until it prints the same hashes.
 *
 * Writes bench/results/host-replace.json. Knobs (env): BENCH_VOLUME_MIB=256, BENCH_FILE_MIB=8.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decrypter, armor } from 'age-encryption';
import { BUSYBOX_IMAGE, containerLogs, engineRequest, startEngines, stopEngines, type TestEngine } from '../test/support/engines.ts';
import { mintCode, removeHubData, startTestHub, waitFor, type TestHub } from '../test/support/hub-fixture.ts';
import { freePort, spawnDockfleet, type DockfleetProcess } from '../test/support/processes.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';

const VOLUME_MIB = envInt('BENCH_VOLUME_MIB', 256, { integer: true });
const FILE_MIB = envInt('BENCH_FILE_MIB', 8, { integer: true });
const MIB = 1024 * 1024;
const NODE = 'bench-host';
const STACK = 'ledger';
const VOLUME = `${STACK}_data`;
const COMPOSE = `services:\n  app:\n    image: ${BUSYBOX_IMAGE}\n    command: ["sh", "-c", "sha256sum /data/* ; sleep 3600"]\n    volumes:\n      - data:/data\nvolumes:\n  data: {}\n`;

async function cli(hub: TestHub, ...args: string[]): Promise<string> {
  const p = spawnDockfleet([...args, '--data', hub.dataDir], { DOCKFLEET_HUB: undefined, DOCKFLEET_TOKEN: undefined });
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`dockfleet ${args.join(' ')} failed: ${p.stderr()}`);
  return p.stdout();
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  return new Promise((resolve, reject) => child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args[0]} failed (${code}): ${stderr}`)))));
}

async function mountpoint(engine: TestEngine, name: string): Promise<string> {
  const res = await engineRequest(engine.socketPath, 'GET', `/volumes/${name}`);
  if (res.status !== 200) throw new Error(`no volume ${name}`);
  return String(res.json.Mountpoint);
}

async function hashes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(root)).sort())
    out.set(
      name,
      createHash('sha256')
        .update(await readFile(join(root, name)))
        .digest('hex'),
    );
  return out;
}

/** Until the container's log holds every file's hash (the app is up and reads its data). */
async function readsItsData(engine: TestEngine, id: string, expect: Map<string, string>): Promise<void> {
  await waitFor(
    async () => {
      const logs = await containerLogs(engine, id);
      return [...expect].every(([name, hash]) => logs.includes(`${hash}  /data/${name}`));
    },
    600_000,
    'the container to read its data',
    100,
  );
}

runBench('host-replace', async () => {
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = mkdtempSync(join(tmpdir(), 'dockfleet-bench-replace-'));
  const engines: TestEngine[] = [];
  const agents: DockfleetProcess[] = [];
  let hub: TestHub | undefined;
  const agent = async (engine: TestEngine, state: string, code: string): Promise<DockfleetProcess> => {
    const p = spawnDockfleet(['agent', '--hub', hub!.url, '--code', code, '--state', state, '--docker', engine.dockerHost, '--policy', join(dir, 'policy.json')]);
    agents.push(p);
    await p.waitForLine(new RegExp(`agent ${NODE} connected`), 60_000);
    return p;
  };
  try {
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ backups: { repository: 'hub' } }));
    writeFileSync(join(dir, 'compose.yml'), COMPOSE);
    hub = await startTestHub({ dataDir: join(dir, 'hub'), port: await freePort() });
    const [engineA] = (await startEngines(1, { prefix: 'bench-replace-a' })) as [TestEngine];
    engines.push(engineA);
    const agentA = await agent(engineA, join(dir, 'agent-a'), await mintCode(hub, NODE));
    await cli(hub, 'stack', 'deploy', STACK, '-f', join(dir, 'compose.yml'), '--node', NODE, '--wait');
    const rootA = await mountpoint(engineA, VOLUME);
    benchLog(`writing ${VOLUME_MIB} MiB into ${VOLUME} on host A`);
    for (let i = 0; i * FILE_MIB < VOLUME_MIB; i++) await writeFile(join(rootA, `part-${String(i).padStart(4, '0')}.bin`), randomBytes(Math.min(FILE_MIB, VOLUME_MIB - i * FILE_MIB) * MIB));
    const expect = await hashes(rootA);
    const backupStarted = performance.now();
    const backupOut = await cli(hub, 'volume', 'backup', NODE, VOLUME, '--repo', 'hub', '--wait');
    const backupMs = performance.now() - backupStarted;
    const recoveryCode = /recovery code .*: ([A-Z0-9-]{35})$/m.exec(backupOut)?.[1];
    if (!recoveryCode) throw new Error(`no recovery code in: ${backupOut}`);
    const backupJob = (await hub.api('GET', `/api/v1/jobs/${backupOut.trim().split('\n').at(-1)!.trim()}`)).json;

    benchLog('host A lost: agent stopped, engine and data root thrown away');
    await agentA.stop();
    await engineA.stop();
    const [engineB] = (await startEngines(1, { prefix: 'bench-replace-b' })) as [TestEngine];
    engines.push(engineB);

    // dockfleet: the replacement enrolls, the hub restores the volume and deploys the stack.
    writeFileSync(join(dir, 'recovery.txt'), recoveryCode, { mode: 0o600 });
    const code = (await cli(hub, 'enroll', NODE, '--replace', '--recovery-code-file', join(dir, 'recovery.txt'))).trim().split('\n').at(-1)!;
    const t0 = performance.now();
    await agent(engineB, join(dir, 'agent-b'), code);
    const enrolledMs = performance.now() - t0;
    const done = await waitFor(
      async () => {
        const r = (await hub!.api('GET', `/api/v1/nodes/${NODE}/rebuild`)).json;
        return r?.state === 'done' || r?.state === 'failed' ? r : null;
      },
      900_000,
      'the rebuild',
      100,
    );
    if (done.state !== 'done') throw new Error(`the rebuild failed: ${done.error}`);
    const rebuildDoneMs = performance.now() - t0;
    const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${STACK}`] }));
    const [app] = (await engineRequest(engineB.socketPath, 'GET', `/containers/json?filters=${filters}`)).json as Array<{ Id: string }>;
    if (!app) throw new Error('no stack container on B');
    await readsItsData(engineB, app.Id, expect);
    const dockfleetMs = performance.now() - t0;
    benchLog(`dockfleet: ${Math.round(dockfleetMs)} ms from enrollment to the stack reading its data`);

    // By hand, on the same engine: restic restore from a local copy of the same repository, then the container.
    const copyStarted = performance.now();
    cpSync(join(hub.dataDir, 'restic', NODE, 'volumes'), join(dir, 'repo-copy'), { recursive: true });
    const copyMs = performance.now() - copyStarted;
    const d = new Decrypter();
    d.addPassphrase(recoveryCode);
    const password = await d.decrypt(armor.decode(String(backupJob.result.volume.escrowedKey)), 'text');
    mkdirSync(join(dir, 'cache-by-hand'));
    const t1 = performance.now();
    const made = await engineRequest(engineB.socketPath, 'POST', '/volumes/create', { Name: 'by-hand' });
    if (made.status !== 201) throw new Error(`volume create: ${made.text}`);
    await run(
      'restic',
      [
        '-r',
        join(dir, 'repo-copy'),
        '--cache-dir',
        join(dir, 'cache-by-hand'),
        'restore',
        'latest',
        '--host',
        NODE,
        '--tag',
        `node=${NODE},volume=${VOLUME}`,
        '--target',
        await mountpoint(engineB, 'by-hand'),
      ],
      { RESTIC_PASSWORD: password },
    );
    const created = await engineRequest(engineB.socketPath, 'POST', '/containers/create?name=by-hand', {
      Image: BUSYBOX_IMAGE,
      Cmd: ['sh', '-c', 'sha256sum /data/* ; sleep 3600'],
      HostConfig: { Binds: ['by-hand:/data'] },
    });
    if (created.status !== 201) throw new Error(`container create: ${created.text}`);
    await engineRequest(engineB.socketPath, 'POST', `/containers/${created.json.Id}/start`);
    await readsItsData(engineB, String(created.json.Id), expect);
    const byHandMs = performance.now() - t1;
    benchLog(`by hand: ${Math.round(byHandMs)} ms (restic restore from a local copy + create/start), the copy itself ${Math.round(copyMs)} ms`);

    const out = {
      bench: 'host-replace',
      at: new Date().toISOString(),
      machine: { ...machineFacts(), loadAtStart, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      volume: { mib: VOLUME_MIB, files: expect.size, fileMib: FILE_MIB },
      backupToHubMs: Math.round(backupMs),
      dockfleet: {
        fromEnrollmentToStackReadingItsDataMs: Math.round(dockfleetMs),
        agentConnectedMs: Math.round(enrolledMs),
        rebuildDoneMs: Math.round(rebuildDoneMs),
        restoreJobMs: done.volumes[0]?.job ? await jobMs(hub, done.volumes[0].job) : null,
      },
      byHand: { resticRestoreFromLocalCopyAndStartMs: Math.round(byHandMs), repositoryCopyMs: Math.round(copyMs) },
      dockfleetOverByHand: Math.round((dockfleetMs / byHandMs) * 100) / 100,
      notes:
        "dockfleet restores through the agent's channel from the hub's repository (restic-bridge), then deploys the stack through a rollout with its health gate; by hand restores from a local copy of the same repository files (copy time apart) and starts one container through the Engine API.",
    };
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'host-replace.json'), `${JSON.stringify(out, null, 2)}\n`);
    benchLog(JSON.stringify(out.dockfleet));
  } finally {
    await Promise.allSettled(agents.map((a) => a.stop()));
    await hub?.stop().catch(() => {});
    await stopEngines(engines).catch(() => {});
    await removeHubData(join(dir, 'hub')).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});

async function jobMs(hub: TestHub, id: string): Promise<number | null> {
  const job = (await hub.api('GET', `/api/v1/jobs/${id}`)).json;
  return job.startedAt && job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.startedAt) : null;
}
