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
 * Arguments narrow the run to those files (`node --import tsx test/support/run-suite.ts
 * test/a.test.ts`). The exit code is non-zero when either lane failed.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const TEST_DIR = new URL('..', import.meta.url).pathname;
const SERIAL = /from 'playwright-core'|support\/browser\.ts'|@serial-lane/;

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

function run(files: string[], concurrency: number): Promise<number> {
  if (files.length === 0) return Promise.resolve(0);
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
}

const { parallel, serial } = await lanes(process.argv.slice(2));
const started = Date.now();
process.stdout.write(`# lane 1: ${parallel.length} files, two at a time\n`);
const first = await run(parallel, 2);
process.stdout.write(`# lane 2: ${serial.length} files one at a time (browsers and @serial-lane files)\n`);
const second = await run(serial, 1);
process.stdout.write(`# both lanes: ${((Date.now() - started) / 60_000).toFixed(1)} min; lane 1 exit ${first}, lane 2 exit ${second}\n`);
process.exitCode = first !== 0 ? first : second;
