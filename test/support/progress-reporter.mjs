/**
 * A `node --test` reporter for `run-suite.ts` (plain JavaScript: Node loads reporters before
 * `--import tsx` applies). It appends a line to `DOCKFLEET_TEST_PROGRESS` as each test begins and
 * ends, written at once, so that when a file is killed at its time limit the suite can name the
 * tests that were still running. It prints nothing itself.
 */
import { appendFileSync } from 'node:fs';

const KINDS = { 'test:dequeue': 'begin', 'test:pass': 'end', 'test:fail': 'end' };

export default async function* progress(source) {
  const file = process.env.DOCKFLEET_TEST_PROGRESS;
  for await (const event of source) {
    const kind = KINDS[event.type];
    if (file && kind) appendFileSync(file, `${kind}\t${event.data.nesting}\t${event.data.name.replace(/\s+/g, ' ')}\n`);
  }
  yield '';
}
