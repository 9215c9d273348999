/**
 * Volume backup throughput to the hub (issue 14): the real `restic` backing up the same data
 * through dockfleet (restic-bridge → the agent's socket → the agent's channel → the hub's
 * repository server, hub and agent as their own processes) beside restic straight to a local
 * repository, same flags, one after the other in one run. Then a second, unchanged run of each
 * (target: under 10 % of the first's time). Target for the first: ≥ 0.7× local's MB/s.
 *
 * The data is made once in a temp dir: many small files (text and random) and some large ones
 * (random, and one compressible), BENCH_DATA_MIB in all. Writes bench/results/volume-backup.json.
 *
 * Knobs (env): BENCH_DATA_MIB=1024 (a quick run: 128), BENCH_SMALL_FILES=4000
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hubRepoArgs } from '../src/agent/backup/hub-repo.ts';
import { benchLog, runBench } from './lib/bench-run.ts';
import { ROOT, startAgentProcess, startHubProcess } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';
import { cpuTotalSeconds, freePort } from './lib/proc.ts';

const DATA_MIB = envInt('BENCH_DATA_MIB', 1024, { integer: true });
const SMALL_FILES = envInt('BENCH_SMALL_FILES', 4000, { integer: true });
const MIB = 1024 * 1024;
const PASSWORD = 'bench password, never sent to the hub';

/** Makes the data set; returns its size in bytes and file count. */
function makeData(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const put = (path: string, data: Buffer): void => {
    writeFileSync(path, data);
    bytes += data.length;
    files++;
  };
  // A quarter in small files (1–64 KiB), half of them text.
  const smallBudget = (DATA_MIB * MIB) / 4;
  for (let i = 0; bytes < smallBudget && i < SMALL_FILES; i++) {
    const sub = join(dir, 'small', String(i % 40));
    if (i < 40) mkdirSync(sub, { recursive: true });
    const size = 1024 + ((i * 7919) % (63 * 1024));
    put(join(sub, `f${i}`), i % 2 === 0 ? Buffer.from(`line ${i} of a small text file\n`.repeat(Math.ceil(size / 30))).subarray(0, size) : randomBytes(size));
  }
  // The rest in large files: one compressible (a log-like text), the others random.
  mkdirSync(join(dir, 'large'));
  const logSize = Math.min(64 * MIB, (DATA_MIB * MIB) / 8);
  put(join(dir, 'large', 'app.log'), Buffer.from('2026-01-01T00:00:00Z info request served in 3 ms path=/api/v1/items status=200\n'.repeat(Math.ceil(logSize / 80))).subarray(0, logSize));
  for (let i = 0; bytes < DATA_MIB * MIB; i++) {
    const size = Math.min(DATA_MIB * MIB - bytes, (32 + (i % 4) * 32) * MIB);
    put(join(dir, 'large', `blob${i}.bin`), randomBytes(size));
  }
  return { bytes, files };
}

interface Timed {
  ms: number;
  code: number | null;
  stderr: string;
}

function runRestic(args: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const start = performance.now();
  const child = spawn('restic', args, { env: { ...process.env, ...env, RESTIC_PASSWORD: PASSWORD }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  return new Promise((resolve) => child.once('close', (code) => resolve({ ms: performance.now() - start, code, stderr })));
}

async function must(what: string, run: Promise<Timed>): Promise<Timed> {
  const r = await run;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr}`);
  return r;
}

runBench('volume-backup', async () => {
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = mkdtempSync(join(tmpdir(), 'dockfleet-bench-volume-backup-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const data = join(dir, 'data');
    mkdirSync(data);
    benchLog(`making ${DATA_MIB} MiB of mixed files`);
    const made = makeData(data);
    benchLog(`${made.files} files, ${(made.bytes / MIB).toFixed(0)} MiB`);

    const hub = await startHubProcess(join(dir, 'hub'), `127.0.0.1:${await freePort()}`);
    stops.push(() => hub.child.stop());
    const agent = await startAgentProcess({
      hub,
      name: 'bench-node',
      stateDir: join(dir, 'agent'),
      docker: 'unix:///nonexistent/dockfleet-bench.sock',
      policyFile: join(dir, 'no-policy.json'),
    });
    stops.unshift(() => agent.stop());

    const hubArgs = hubRepoArgs(join(dir, 'agent'), 'bench-volume');
    const sides = {
      local: { base: ['-r', join(dir, 'local-repo')], cache: join(dir, 'cache-local') },
      hub: { base: ['-r', hubArgs.repo, ...hubArgs.options], cache: join(dir, 'cache-hub') },
    };
    const flags = (side: keyof typeof sides): string[] => [...sides[side].base, '--cache-dir', sides[side].cache];
    for (const side of ['local', 'hub'] as const) await must(`${side} init`, runRestic([...flags(side), 'init'], {}));

    const results: Record<string, { firstMs: number; firstMBps: number; secondMs: number; secondOfFirst: number; hubCpuS?: number; agentCpuS?: number }> = {};
    for (const side of ['local', 'hub'] as const) {
      const cpu0 = { hub: cpuTotalSeconds(hub.child.pid), agent: cpuTotalSeconds(agent.pid) };
      benchLog(`${side}: first backup`);
      const first = await must(`${side} backup`, runRestic([...flags(side), 'backup', '-q', data], {}));
      const cpu1 = { hub: cpuTotalSeconds(hub.child.pid), agent: cpuTotalSeconds(agent.pid) };
      benchLog(`${side}: second, unchanged backup`);
      const second = await must(`${side} second backup`, runRestic([...flags(side), 'backup', '-q', data], {}));
      results[side] = {
        firstMs: Math.round(first.ms),
        firstMBps: Math.round((made.bytes / 1e6 / (first.ms / 1000)) * 10) / 10,
        secondMs: Math.round(second.ms),
        secondOfFirst: Math.round((second.ms / first.ms) * 1000) / 1000,
        ...(side === 'hub' ? { hubCpuS: Math.round((cpu1.hub - cpu0.hub) * 10) / 10, agentCpuS: Math.round((cpu1.agent - cpu0.agent) * 10) / 10 } : {}),
      };
      benchLog(`${side}: ${JSON.stringify(results[side])}`);
    }
    const ratio = Math.round((results.hub!.firstMBps / results.local!.firstMBps) * 1000) / 1000;
    const out = {
      bench: 'volume-backup',
      at: new Date().toISOString(),
      machine: { ...machineFacts(), loadAtStart, loadAtEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      restic: 'Debian restic 0.14 (/usr/bin/restic), same flags both sides: backup -q --cache-dir (own fresh cache per side)',
      data: { mib: DATA_MIB, bytes: made.bytes, files: made.files, smallFilesMax: SMALL_FILES },
      local: results.local,
      hub: results.hub,
      hubOverLocal: ratio,
      targets: { hubOverLocalAtLeast: 0.7, secondRunUnderFirst: 0.1 },
      met: {
        throughput: ratio >= 0.7,
        secondRunHub: results.hub!.secondOfFirst < 0.1,
        secondRunLocal: results.local!.secondOfFirst < 0.1,
      },
    };
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'volume-backup.json'), `${JSON.stringify(out, null, 2)}\n`);
    benchLog(`hub ${results.hub!.firstMBps} MB/s vs local ${results.local!.firstMBps} MB/s: ${ratio}×; second runs ${results.hub!.secondOfFirst} / ${results.local!.secondOfFirst} of the first`);
  } finally {
    for (const stop of stops) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
