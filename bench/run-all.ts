/**
 * `npm run bench`: every bench in this folder, one after another, each in its own process (so one
 * bench's processes and memory never overlap another's), stopping at the first that fails.
 * Each writes its own JSON to bench/results/. Names on the command line pick some:
 *
 *   npm run bench -- docker-gateway fleet-merge
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length > 0) {
  process.stderr.write(`no such bench: ${unknown.join(', ')} (there are: ${all.join(', ')})\n`);
  process.exit(2);
}

for (const name of wanted.length > 0 ? wanted : all) {
  const started = Date.now();
  process.stdout.write(`\n=== ${name}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${name}.bench.ts`)], { stdio: 'inherit' });
  const took = `${((Date.now() - started) / 1000).toFixed(0)} s`;
  if (run.status !== 0) {
    process.stderr.write(`=== ${name} failed (${run.signal ?? `exit ${run.status}`}) after ${took}\n`);
    process.exit(1);
  }
  process.stdout.write(`=== ${name} done in ${took}\n`);
}
