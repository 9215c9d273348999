/**
 * A `node --test` reporter for `run-suite.ts` (plain JavaScript: Node loads reporters before
 * `--import tsx` applies). It appends a line to `DOCKFLEET_TEST_PROGRESS` as each test begins and
 * ends, written at once, so that when a file is killed at its time limit the suite can name the
 * tests that were still running. A failed test's line also carries why (the error's message, its
 * first lines), so that the suite can repeat it in the closing summary, which is what a CI log's
 * tail shows. It prints nothing itself.
 */
import { appendFileSync } from 'node:fs';

const KINDS = { 'test:dequeue': 'begin', 'test:pass': 'end', 'test:fail': 'end' };

/** The failure's own message (a test's error wraps the thrown one as its cause), cut to its first lines. */
function reason(error) {
  const thrown = error?.cause ?? error;
  const text = String(thrown?.message ?? thrown ?? 'unknown');
  return text.split('\n').slice(0, 12).join('\n').slice(0, 1_500);
}

export default async function* progress(source) {
  const file = process.env.DOCKFLEET_TEST_PROGRESS;
  for await (const event of source) {
    const kind = KINDS[event.type];
    if (!file || !kind) continue;
    const why = event.type === 'test:fail' ? `\t${JSON.stringify(reason(event.data.details?.error))}` : '';
    appendFileSync(file, `${kind}\t${event.data.nesting}\t${event.data.name.replace(/\s+/g, ' ')}${why}\n`);
  }
  yield '';
}
