/**
 * `dockfleet agent audit --verify` over 100,000 entries: wall time of the CLI process (start to
 * exit), beside a baseline process that starts the same way (node + tsx loader), reads the same
 * file and JSON-parses every line without hashing or checking. Also the in-process times of the
 * two (verifyAuditBytes vs read + parse), so the process start is seen apart. The log is written
 * by the real HostAuditLog, entries shaped like the agent's. Writes bench/results/host-audit.json.
 *
 * Verify hashes each line's raw bytes and scans out seq and prev (scan-entry-line.ts); the CLI
 * loads only src/agent/audit/ for it. The load average at start and end is written beside the times
 * (other sessions share the machine).
 *
 * Knobs (env): BENCH_ENTRIES=100000 BENCH_RUNS=5
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostAuditLog } from '../src/agent/audit/host-audit.ts';
import { verifyAuditBytes } from '../src/agent/audit/verify-audit.ts';
import { BIN, ROOT } from './lib/dockfleet-procs.ts';
import { envInt } from './lib/env-int.ts';
import { machineFacts } from './lib/machine.ts';

const ENTRIES = envInt('BENCH_ENTRIES', 100_000);
const RUNS = envInt('BENCH_RUNS', 5);

const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
const dir = mkdtempSync(join(tmpdir(), 'dockfleet-bench-host-audit-'));
try {
  const writeStart = performance.now();
  const audit = HostAuditLog.open(dir);
  for (let i = 0; i < ENTRIES; i++) {
    const id = ((i * 2654435761) % 2 ** 32).toString(16).padStart(8, '0').repeat(8);
    audit.append(
      i % 10 === 0
        ? {
            op: 'POST /containers/create',
            target: `web-${i}`,
            result: 'refused',
            status: 403,
            reason: 'privileged containers (allow.privileged is false in the host policy)',
            user: 'ann@example.com',
            ref: String(i),
          }
        : { op: `POST /containers/${id}/stop`, target: id, result: 'ok', status: 204, user: 'ann@example.com', key: 'ed25519:AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde', ref: String(i) },
    );
  }
  audit.close();
  const writeMs = performance.now() - writeStart;
  const path = join(dir, 'audit.log');
  const bytes = statSync(path).size;

  // The baseline process: same node and loader start, then read and JSON.parse every line.
  const baselineScript = join(dir, 'parse-only.ts');
  writeFileSync(
    baselineScript,
    `import { readFileSync } from 'node:fs';\nlet n = 0;\nfor (const line of readFileSync(process.argv[2]!, 'utf8').split('\\n')) if (line) { JSON.parse(line); n++; }\nprocess.stdout.write(\`parsed \${n}\\n\`);\n`,
  );

  const timeProcess = (args: string[]): { ms: number; code: number | null; out: string } => {
    const start = performance.now();
    const res = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    return { ms: performance.now() - start, code: res.status, out: (res.stdout + res.stderr).trim().split('\n')[0] ?? '' };
  };
  const verifyRuns: number[] = [];
  const baselineRuns: number[] = [];
  let verdict = '';
  for (let r = 0; r < RUNS; r++) {
    const v = timeProcess([BIN, 'agent', 'audit', '--state', dir, '--verify']);
    if (v.code !== 0) throw new Error(`agent audit --verify failed: ${v.out}`);
    verdict = v.out;
    verifyRuns.push(v.ms);
    const b = timeProcess(['--import', 'tsx', baselineScript, path]);
    if (b.code !== 0) throw new Error(`baseline failed: ${b.out}`);
    baselineRuns.push(b.ms);
  }
  // The same work in this process, without any process start.
  const inProcess = (fn: () => void): number[] =>
    Array.from({ length: RUNS }, () => {
      const s = performance.now();
      fn();
      return performance.now() - s;
    });
  const verifyInProcess = inProcess(() => {
    if (verifyAuditBytes(readFileSync(path), { entries: false }).problem) throw new Error('chain broken');
  });
  const parseInProcess = inProcess(() => {
    for (const line of readFileSync(path, 'utf8').split('\n')) if (line) JSON.parse(line);
  });
  // A bare process start with the loader: what every CLI call pays before any work.
  const startOnly = Array.from({ length: RUNS }, () => timeProcess(['--import', 'tsx', '-e', '0']).ms);

  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return Math.round(s[Math.floor(s.length / 2)]! * 10) / 10;
  };
  const result = {
    bench: 'host-audit',
    when: new Date().toISOString(),
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    entries: ENTRIES,
    fileBytes: bytes,
    runs: RUNS,
    target: 'agent audit --verify over 100,000 entries under 1 s (CLI wall time)',
    writeAllEntriesMs: Math.round(writeMs),
    cliVerifyWallMs: { median: median(verifyRuns), all: verifyRuns.map(Math.round) },
    baselineReadParseWallMs: { median: median(baselineRuns), all: baselineRuns.map(Math.round) },
    processStartWithLoaderMs: { median: median(startOnly) },
    inProcessVerifyMs: { median: median(verifyInProcess) },
    inProcessReadParseMs: { median: median(parseInProcess) },
    meetsTarget: median(verifyRuns) < 1000,
    verdict,
    machine: machineFacts(),
  };
  writeFileSync(join(ROOT, 'bench', 'results', 'host-audit.json'), `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify({ ...result, machine: undefined }, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
