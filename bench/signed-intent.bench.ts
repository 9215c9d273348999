/**
 * Signed intent (issue 13): what signing in `dockfleet connect` and verifying on the host cost,
 * side by side in one run against one private dockerd. Two nodes share that engine: `signed`,
 * whose policy requires signatures for everything (`require: "all"`, so reads are signed and
 * checked too), reached through `dockfleet connect` holding the listed operator key; and
 * `plain`, with no signedIntent, reached through `dockfleet connect --unsigned` (today's path).
 * Hub, agents and both connects are separate `node bin/dockfleet.js` processes.
 *
 *   node --import tsx bench/signed-intent.bench.ts
 *
 * Phases:
 *   small   /_ping and /containers/json through each connect socket, N calls each over keep-alive,
 *           in interleaved blocks so drift hits both alike: p50/p99 and the difference. Then the
 *           same for a change (POST start of a running container, 304), which a host verifies
 *           before the engine hears of it, where a read is verified while the engine works.
 *   stream  PUT /containers/ID/archive of a BENCH_BIG_MIB MiB tar (one file) through each socket,
 *           chunked as `docker cp` sends it (so signed, it travels in sealed frames): MB/s, the
 *           CPU seconds of connect, hub and agent per run, and how many seals went out.
 *
 * Writes bench/results/signed-intent.json. Targets: p50 ≤ +0.3 ms; stream ≥ 0.9× unsigned.
 * Knobs (env): BENCH_SMALL_N=2000 BENCH_SMALL_BLOCK=200 BENCH_BIG_MIB=1024 BENCH_STREAM_REPS=2
 * BENCH_CONTAINERS=20 BENCH_CPU_PROF=DIR (profiles of hub and agents). Kills only the pids it
 * started; removes its engine and temp dirs also on failure.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { generateOperatorKey } from '../src/lib/intent-keys.ts';
import { operatorKeyFingerprint } from '../src/lib/operator-key-fingerprint.ts';
import { saveLocalKey } from '../src/cli/intent/operator-key-file.ts';
import { runContainer, startEngines, stopEngines, type TestEngine } from '../test/support/engines.ts';
import { ALL_DOCKER_SECTIONS, BIN, ROOT, childEnv, nodeFlags, startAgentProcess, startHubProcess, type HubProcess } from './lib/dockfleet-procs.ts';
import { TimedClient } from './lib/http-timing.ts';
import { machineFacts } from './lib/machine.ts';
import { cpuTotalSeconds, freePort, startChild, type Child } from './lib/proc.ts';
import { summarize, type LatencySummary } from './lib/stats.ts';
import { envInt } from './lib/env-int.ts';
import { benchLog, runBench } from './lib/bench-run.ts';

const RESULTS = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', 'signed-intent.json');
const SMALL_N = envInt('BENCH_SMALL_N', 2000);
const SMALL_BLOCK = envInt('BENCH_SMALL_BLOCK', 200);
const BIG_MIB = envInt('BENCH_BIG_MIB', 1024);
const STREAM_REPS = Math.max(1, envInt('BENCH_STREAM_REPS', 2));
const CONTAINERS = envInt('BENCH_CONTAINERS', 20);
/** The two reads, and one change for comparison: starting a running container (304), audited on both hosts. */
const CALLS = [
  { name: '/_ping', method: 'GET', expect: 200, target: true },
  { name: '/v1.41/containers/json', method: 'GET', expect: 200, target: true },
  { name: 'POST /v1.41/containers/ID/start', method: 'POST', expect: 304, target: false },
];
type Side = 'unsigned' | 'signed';
const SIDES: Side[] = ['unsigned', 'signed'];

/** A tar of one file of `mib` MiB (incompressible bytes, 1 MiB repeated), as a stream. */
function bigTar(mib: number): Readable {
  const size = mib * 1024 * 1024;
  const header = Buffer.alloc(512);
  header.write('big.bin', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const block = randomBytes(1024 * 1024);
  let sent = 0;
  return new Readable({
    read() {
      if (sent === 0) this.push(header);
      if (sent < mib) {
        sent += 1;
        this.push(block);
        return;
      }
      this.push(Buffer.alloc(1024)); // two zero blocks: the end of the archive
      this.push(null);
    },
  });
}

/** PUT archive through a connect socket, chunked; resolves with seconds taken. */
function putArchive(socketPath: string, container: string, mib: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request({ socketPath, method: 'PUT', path: `/v1.41/containers/${container}/archive?path=%2Ftmp`, headers: { host: 'docker', 'content-type': 'application/x-tar' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`PUT archive: ${res.statusCode} ${Buffer.concat(chunks).toString()}`));
        resolve(Number(process.hrtime.bigint() - started) / 1e9);
      });
    });
    req.once('error', reject);
    bigTar(mib).pipe(req);
  });
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dockfleet-bench-signed-'));
  const children: Child[] = [];
  let engine: TestEngine | undefined;
  try {
    [engine] = (await startEngines(1, { prefix: 'bsig' })) as [TestEngine];
    benchLog(`engine up; ${CONTAINERS} containers`);
    const containers = [];
    for (let i = 0; i < CONTAINERS; i++) containers.push(await runContainer(engine, { name: `c${i}` }));
    const target = containers[0]!;

    const home = join(work, 'home');
    const key = generateOperatorKey();
    await saveLocalKey(operatorKeyFingerprint(key.publicKey), key.privateKeyPem, join(home, 'operator-keys'));
    const sections = Object.fromEntries(ALL_DOCKER_SECTIONS.map((s) => [s, true]));
    await writeFile(join(work, 'plain.json'), JSON.stringify({ sections }));
    await writeFile(join(work, 'signed.json'), JSON.stringify({ sections, signedIntent: { operators: [key.publicKey], require: 'all' } }));

    await mkdir(join(work, 'hub'));
    const hub: HubProcess = await startHubProcess(join(work, 'hub'), `127.0.0.1:${await freePort()}`);
    children.push(hub.child);
    for (const name of ['plain', 'signed']) {
      children.push(await startAgentProcess({ hub, name, stateDir: join(work, `agent-${name}`), docker: engine.dockerHost, policyFile: join(work, `${name}.json`) }));
    }
    const sockets: Record<Side, string> = { unsigned: join(work, 'unsigned.sock'), signed: join(work, 'signed.sock') };
    const connects = {} as Record<Side, Child>;
    for (const side of SIDES) {
      const args = side === 'signed' ? ['connect', 'signed', '--socket', sockets.signed] : ['connect', 'plain', '--socket', sockets.unsigned, '--unsigned'];
      const child = startChild(`connect-${side}`, process.execPath, [...nodeFlags(`connect-${side}`), BIN, ...args, '--data', hub.dataDir], { cwd: ROOT, env: childEnv({ DOCKFLEET_HOME: home }) });
      await child.waitForLine(/^serving node /, 30_000);
      children.push(child);
      connects[side] = child;
    }
    const procs = { connect: connects, hub: hub.child, agents: { unsigned: children[1]!, signed: children[2]! } };

    // small: interleaved blocks, unsigned then signed, per path.
    const clients: Record<Side, TimedClient> = { unsigned: new TimedClient({ kind: 'unix', socketPath: sockets.unsigned }), signed: new TimedClient({ kind: 'unix', socketPath: sockets.signed }) };
    const small: Record<string, Record<Side, LatencySummary> & { p50DeltaMs: number; p99DeltaMs: number; target: boolean }> = {};
    for (const call of CALLS) {
      const path = call.name.replace(/^POST /, '').replace('/ID/', `/${target}/`);
      const opts = { method: call.method };
      for (const side of SIDES) for (let i = 0; i < 50; i++) await clients[side].request(path, opts); // warm up
      const samples: Record<Side, number[]> = { unsigned: [], signed: [] };
      for (let done = 0; done < SMALL_N; done += SMALL_BLOCK) {
        for (const side of SIDES) {
          for (let i = 0; i < SMALL_BLOCK; i++) {
            const r = await clients[side].request(path, opts);
            if (r.status !== call.expect) throw new Error(`${side} ${call.name}: ${r.status}`);
            samples[side].push(r.ms);
          }
        }
      }
      const u = summarize(samples.unsigned);
      const s = summarize(samples.signed);
      small[call.name] = { unsigned: u, signed: s, p50DeltaMs: Math.round((s.p50 - u.p50) * 1000) / 1000, p99DeltaMs: Math.round((s.p99 - u.p99) * 1000) / 1000, target: call.target };
      benchLog(`${call.name}: p50 ${u.p50} → ${s.p50} ms (+${small[call.name]!.p50DeltaMs}), p99 ${u.p99} → ${s.p99} ms`);
    }
    for (const c of Object.values(clients)) c.close();

    // stream: PUT archive of BIG_MIB MiB, alternating sides.
    const runs: Array<{ side: Side; seconds: number; mbPerS: number; cpu: { connect: number; hub: number; agent: number } }> = [];
    for (let rep = 0; rep < STREAM_REPS; rep++) {
      for (const side of rep % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const cpu0 = { connect: cpuTotalSeconds(procs.connect[side].pid), hub: cpuTotalSeconds(procs.hub.pid), agent: cpuTotalSeconds(procs.agents[side].pid) };
        const seconds = await putArchive(sockets[side], target, BIG_MIB);
        const cpu = {
          connect: round(cpuTotalSeconds(procs.connect[side].pid) - cpu0.connect),
          hub: round(cpuTotalSeconds(procs.hub.pid) - cpu0.hub),
          agent: round(cpuTotalSeconds(procs.agents[side].pid) - cpu0.agent),
        };
        const mbPerS = round((BIG_MIB * 1024 * 1024) / 1e6 / seconds);
        runs.push({ side, seconds: round(seconds), mbPerS, cpu });
        benchLog(`stream ${side}: ${BIG_MIB} MiB in ${round(seconds)} s = ${mbPerS} MB/s; cpu s connect ${cpu.connect} hub ${cpu.hub} agent ${cpu.agent}`);
      }
    }
    const best = (side: Side): number => Math.max(...runs.filter((r) => r.side === side).map((r) => r.mbPerS));
    const mean = (side: Side): number => round(runs.filter((r) => r.side === side).reduce((a, r) => a + r.mbPerS, 0) / STREAM_REPS);
    const ratio = round(mean('signed') / mean('unsigned'));
    const result = {
      bench: 'signed-intent',
      at: new Date().toISOString(),
      machine: machineFacts(),
      config: { smallN: SMALL_N, block: SMALL_BLOCK, bigMiB: BIG_MIB, streamReps: STREAM_REPS, containers: CONTAINERS, signedRequire: 'all' },
      small,
      stream: { runs, meanMBps: { unsigned: mean('unsigned'), signed: mean('signed') }, bestMBps: { unsigned: best('unsigned'), signed: best('signed') }, signedOverUnsigned: ratio },
      targets: {
        p50DeltaMs: 0.3,
        p50Met: Object.values(small)
          .filter((s) => s.target)
          .every((s) => s.p50DeltaMs <= 0.3),
        streamRatio: 0.9,
        streamMet: ratio >= 0.9,
      },
    };
    await writeFile(RESULTS, `${JSON.stringify(result, null, 2)}\n`);
    benchLog(`stream signed/unsigned ${ratio}; wrote ${RESULTS}`);
  } finally {
    for (const c of children.reverse()) await c.stop().catch(() => {});
    if (engine) await stopEngines([engine]);
    await rm(work, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

runBench('signed-intent', main);
