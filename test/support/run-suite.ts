/**
 * `npm test`: every test/*.test.ts, in two lanes one after the other, so the suite fits its
 * 30 minutes on a 2-core machine.
 *
 * - **Two at a time**: most files spend their time waiting on engines, restic, timers and child
 *   processes, so two files share the machine well.
 * - **One at a time**: files that drive a browser, and files marked `@serial-lane` in their
 *   header. Chromium fails whatever is in flight with ERR_NETWORK_CHANGED whenever another file's
 *   engine adds a bridge or a veth, and a few files time deliveries and retries closely; these
 *   run with nothing else beside them.
 *
 * Each file runs in its own `node --test` process group, so the suite can never hang on one file:
 * - the file's process leaves once its tests have finished (`--test-force-exit`), even if something
 *   it started still holds the event loop (the support helpers kill their children on exit);
 * - a file still running after `DOCKFLEET_TEST_FILE_MINUTES` (default 15) is killed with its whole
 *   group, and the summary names it, instead of the suite running into CI's own limit unheard.
 * A file's output is printed in one piece when it ends, with its time.
 *
 * Arguments narrow the run to those files (`node --import tsx test/support/run-suite.ts
 * test/a.test.ts`). The exit code is non-zero when any file failed.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TEST_DIR = new URL('..', import.meta.url).pathname;
const SERIAL = /from 'playwright-core'|support\/browser\.ts'|@serial-lane/;
const FILE_LIMIT_MS = Number(process.env.DOCKFLEET_TEST_FILE_MINUTES ?? 15) * 60_000;

interface FileResult {
  file: string;
  ms: number;
  code: number;
  timedOut: boolean;
  counts: Record<string, number>;
  /** Each failed test and why, from the progress file. */
  why: string[];
}

async function lanes(only: string[]): Promise<{ parallel: string[]; serial: string[] }> {
  const files =
    only.length > 0
      ? only
      : (await readdir(TEST_DIR))
          .filter((f) => f.endsWith('.test.ts'))
          .sort()
          .map((f) => join('test', f));
  const parallel: string[] = [];
  const serial: string[] = [];
  for (const file of files) (SERIAL.test(await readFile(file, 'utf8')) ? serial : parallel).push(file);
  return { parallel, serial };
}

/** The tests a progress file (`progress-reporter.mjs`) shows begun and not ended, outermost first. */
function unfinished(progressText: string): string[] {
  const open: string[] = [];
  for (const line of progressText.split('\n')) {
    const [kind, nesting, name] = line.split('\t');
    if (kind === 'begin') open.push(`${nesting}\t${name}`);
    else if (kind === 'end') {
      const at = open.lastIndexOf(`${nesting}\t${name}`);
      if (at >= 0) open.splice(at, 1);
    }
  }
  return open.map((entry) => entry.split('\t')[1]!);
}

/** The failed tests a progress file shows, each with why (not the suites that failed only because a test in them did). */
function failuresIn(progressText: string): string[] {
  return progressText
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([kind, , , why]) => kind === 'end' && why !== undefined)
    .map(([, , name, why]) => [name, JSON.parse(why!) as string])
    .filter(([, why]) => !/^\d+ subtests? failed$/.test(why!))
    .map(([name, why]) => `${name}: ${why}`);
}

/** The spec reporter's closing counts (`ℹ tests 12`, `ℹ fail 1` …). */
function countsOf(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of output.matchAll(/^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[m[1]!] = Number(m[2]);
  return counts;
}

/** Process groups still running, ended with the suite if it is stopped itself. */
const groups = new Set<number>();
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    for (const pid of groups) killGroup(pid, 'SIGKILL');
    process.exit(130);
  });

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is already gone
  }
}

const PROGRESS_REPORTER = new URL('./progress-reporter.mjs', import.meta.url).pathname;
const progressDir = await mkdtemp(join(tmpdir(), 'dockfleet-suite-'));
process.once('exit', () => rmSync(progressDir, { recursive: true, force: true }));

async function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  const progressFile = join(progressDir, `${file.replace(/\W+/g, '-')}.progress`);
  const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${PROGRESS_REPORTER}`, '--test-reporter-destination=/dev/null'];
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-force-exit', ...reporters, file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: a file over its limit is killed with everything it started
    env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? '0', DOCKFLEET_TEST_PROGRESS: progressFile },
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const pid = child.pid!;
  groups.add(pid);
  let timedOut = false;
  const limit = setTimeout(() => {
    timedOut = true;
    killGroup(pid, 'SIGTERM');
    setTimeout(() => killGroup(pid, 'SIGKILL'), 10_000).unref();
  }, FILE_LIMIT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(limit);
  groups.delete(pid);
  killGroup(pid, 'SIGKILL'); // whatever the file left behind in its group
  const ms = Date.now() - started;
  const progress = await readFile(progressFile, 'utf8').catch(() => '');
  let head = `# ${file}: ${(ms / 1000).toFixed(1)} s${code !== 0 ? `, exit ${code}` : ''}`;
  if (timedOut) {
    const running = unfinished(progress);
    head += `\n✖ ${file} was killed, still running after ${FILE_LIMIT_MS / 60_000} min, in: ${running.join(' › ') || '(no test had begun)'}`;
  }
  process.stdout.write(`${head}\n${output}${output.endsWith('\n') ? '' : '\n'}`);
  return { file, ms, code: timedOut ? 124 : (code ?? 1), timedOut, counts: countsOf(output), why: failuresIn(progress) };
}

async function runLane(files: string[], concurrency: number): Promise<FileResult[]> {
  const queue = [...files];
  const results: FileResult[] = [];
  const worker = async (): Promise<void> => {
    for (let file = queue.shift(); file; file = queue.shift()) results.push(await runFile(file));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return results;
}

function summary(name: string, results: FileResult[], ms: number): void {
  const total = (key: string): number => results.reduce((sum, r) => sum + (r.counts[key] ?? 0), 0);
  const failed = results.filter((r) => r.code !== 0);
  const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
  process.stdout.write(
    `# ${name}: ${results.length} files in ${(ms / 60_000).toFixed(1)} min; tests ${total('tests')}, pass ${total('pass')}, fail ${total('fail')}, cancelled ${total('cancelled')}, skipped ${total('skipped')}, todo ${total('todo')}\n` +
      `#   slowest: ${slowest.map((r) => `${r.file} ${(r.ms / 1000).toFixed(0)} s`).join(', ')}\n` +
      (failed.length > 0 ? `#   failed: ${failed.map((r) => `${r.file}${r.timedOut ? ' (killed at its limit)' : ''}`).join(', ')}\n` : ''),
  );
  // Said again last, where a CI log's tail shows it: each failed test and why.
  for (const r of failed) for (const why of r.why.slice(0, 5)) process.stdout.write(`#   ✖ ${r.file} › ${why.replace(/\n/g, '\n#     ')}\n`);
}

const { parallel, serial } = await lanes(process.argv.slice(2));
const started = Date.now();
process.stdout.write(`# lane 1: ${parallel.length} files, two at a time\n`);
const first = await runLane(parallel, 2);
const firstMs = Date.now() - started;
process.stdout.write(`# lane 2: ${serial.length} files one at a time (browsers and @serial-lane files)\n`);
const second = await runLane(serial, 1);
summary('lane 1', first, firstMs);
summary('lane 2', second, Date.now() - started - firstMs);
const failures = [...first, ...second].filter((r) => r.code !== 0).length;
process.stdout.write(`# both lanes: ${((Date.now() - started) / 60_000).toFixed(1)} min; ${failures} file(s) failed\n`);
process.exitCode = failures > 0 ? 1 : 0;
